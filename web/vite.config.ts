import { resolve } from "node:path";
import { defineConfig } from "vite";

// Two pages, built into the Python package (served by studio402.api.ops.static).
export default defineConfig({
  base: "/",
  build: {
    outDir: resolve(__dirname, "../src/studio402/api/static"),
    emptyOutDir: true,
    target: "es2020",
    rollupOptions: {
      input: { index: resolve(__dirname, "index.html"), admin: resolve(__dirname, "admin.html") },
    },
  },
});
