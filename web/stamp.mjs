// Writes the hash of the front-end sources next to the build output: tests/web/test_build_fresh.py fails
// when web/ changed without `npm run build` (the built files are committed and shipped in the package).
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";

const files = ["index.html", "admin.html", "vite.config.ts", "package-lock.json", ...readdirSync("src").sort().map((f) => `src/${f}`)];
const hash = createHash("sha256");
for (const file of files) hash.update(file + "\0").update(readFileSync(file)).update("\0");
writeFileSync("../src/studio402/api/static/SOURCES.sha256", hash.digest("hex") + "\n");
