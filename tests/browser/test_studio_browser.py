"""The studio page and the operator dashboard in a real browser (Debian's chromium, driven by Playwright),
against a server paying on the devnet, with a test wallet injected into the page: pay for an image, see it,
reload and find it in the gallery, then see that payment's revenue on the dashboard. Screenshots go to
test-artifacts/browser/."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from studio402.chain.devnet import Devnet
from tests.browser.wallet_provider import TestWallet
from tests.devnet_fixture import new_payer
from tests.paid_support import running_server, transfers_from

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
TOKEN = "browser-admin-token"
CHROMIUM = ("/usr/lib/chromium/chromium", "/usr/bin/chromium")


def chromium_path() -> str:
    for path in (os.environ.get("STUDIO402_CHROMIUM"), *CHROMIUM, shutil.which("chromium")):
        if path and Path(path).is_file():
            return path
    pytest.fail("chromium is not installed: run scripts/setup --test (it installs Debian's chromium)")


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        )
        yield launched
        await launched.close()


def console_log(page: Page, lines: list[str]) -> None:
    page.on("console", lambda msg: lines.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: lines.append(f"pageerror: {exc}"))


async def test_pay_see_gallery_and_dashboard(devnet: Devnet, tmp_path: Path, browser: Browser) -> None:
    payer = await new_payer(devnet, 5_000_000)
    wallet = TestWallet(payer.key, chain_id=1)  # on another chain: the page asks the wallet to switch
    async with running_server(devnet, tmp_path / "data", overrides={"admin.token": TOKEN}) as server:
        context = await browser.new_context(viewport={"width": 1200, "height": 900})
        await wallet.install(context)
        page = await context.new_page()
        logs: list[str] = []
        console_log(page, logs)
        page.on("request", lambda r: logs.append(f"{r.method} {r.url} {r.post_data}"))
        await page.goto(server.base + "/")
        await page.wait_for_selector("body[data-ready='1']")
        await expect(page.locator("#account")).to_contain_text(payer.address[:6])
        await page.select_option("#route", label="nano-banana/generate")
        await page.fill("textarea[name=prompt]", "a lighthouse in a storm, oil painting")
        await expect(page.locator("#quote")).to_have_text("$0.067", timeout=10_000)  # 1K by default
        await page.select_option("select[name=imageSize]", "512")
        try:
            await expect(page.locator("#quote")).to_have_text("$0.045")  # the live quote follows the form
        except AssertionError:
            print("\n".join(logs))
            raise
        await page.click("#pay")
        image = page.locator("#result img")
        await expect(image).to_be_visible(timeout=60_000)
        assert await image.evaluate("img => img.complete && img.naturalWidth > 0"), logs
        link = page.locator("#result a[download]")
        assert await link.get_attribute("href") == await image.get_attribute("src")
        async with page.expect_download() as download_info:
            await link.click()
        saved = ARTIFACTS / "downloaded.png"
        await (await download_info.value).save_as(saved)
        assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        job_id = await page.locator("#result").get_attribute("data-job-id")
        assert job_id and job_id.startswith("job_")
        await page.screenshot(path=ARTIFACTS / "studio-result.png", full_page=True)

        # The payment really moved the payer's test USDC to payTo, once.
        sent = await transfers_from(devnet, payer.address)
        assert [(to.lower(), value) for to, value, _ in sent] == [(devnet.info.pay_to.lower(), 45_000)]
        assert wallet.calls.count("eth_signTypedData_v4") == 1
        assert "wallet_switchEthereumChain" in wallet.calls and wallet.chain_id == devnet.info.chain_id

        await page.reload()
        await page.wait_for_selector("body[data-ready='1']")
        await page.click("#gallery-load")
        figure = page.locator(f"#gallery figure[data-job-id='{job_id}']")
        await expect(figure).to_have_attribute("data-status", "complete", timeout=15_000)
        await expect(figure.locator("img")).to_be_visible()
        await page.screenshot(path=ARTIFACTS / "studio-gallery.png", full_page=True)

        admin = await context.new_page()
        console_log(admin, logs)
        await admin.goto(server.base + "/admin")
        await admin.fill("#token", "wrong")
        await admin.click("#login button")
        await expect(admin.locator("#admin-error")).to_contain_text("401")
        await admin.fill("#token", TOKEN)
        await admin.click("#login button")
        await expect(admin.locator("#revenue-total")).to_have_text("$0.045", timeout=10_000)
        await expect(admin.locator("#revenue-table")).to_contain_text("nano-banana")
        await expect(admin.locator("#audit")).to_contain_text("Balanced", timeout=30_000)
        assert await admin.locator("#revenue-chart svg rect").count() == 1
        await expect(admin.locator("#model-chart svg")).to_contain_text("nano-banana")
        await admin.screenshot(path=ARTIFACTS / "admin-dashboard.png", full_page=True)
        await context.close()


async def test_phone_sized_screen(devnet: Devnet, tmp_path: Path, browser: Browser) -> None:
    async with running_server(devnet, tmp_path / "data") as server:
        context = await browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
        page = await context.new_page()
        await page.goto(server.base + "/")
        await page.wait_for_selector("body[data-ready='1']")
        await expect(page.locator("textarea[name=prompt]")).to_be_visible()
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page scrolls sideways by {overflow}px on a phone"
        box = await page.locator("#pay").bounding_box()
        assert box is not None and box["x"] + box["width"] <= 375
        # No wallet on this phone: the page says so instead of failing silently.
        await page.click("#connect")
        await expect(page.locator("#status")).to_contain_text("No browser wallet")
        await expect(page.locator("#quote")).to_have_text("$0.045–$0.151")  # no prompt yet: the price range
        await page.screenshot(path=ARTIFACTS / "studio-phone.png", full_page=True)
        await context.close()


async def test_attach_an_image_through_a_paid_upload(
    devnet: Devnet, tmp_path: Path, browser: Browser
) -> None:
    from PIL import Image

    picture = tmp_path / "my photo (1).png"
    Image.new("RGB", (64, 48), (200, 40, 40)).save(picture)
    payer = await new_payer(devnet, 5_000_000)
    wallet = TestWallet(payer.key, devnet.info.chain_id)
    async with running_server(devnet, tmp_path / "data") as server:
        context = await browser.new_context(viewport={"width": 1000, "height": 900})
        await wallet.install(context)
        page = await context.new_page()
        await page.goto(server.base + "/")
        await page.wait_for_selector("body[data-ready='1']")
        await page.select_option("#route", label="nano-banana/edit")
        await page.fill("textarea[name=prompt]", "make it blue")
        await page.set_input_files("input[name=images]", picture)
        await page.click("#pay")
        await expect(page.locator("#result img")).to_be_visible(timeout=60_000)
        await page.screenshot(path=ARTIFACTS / "studio-edit-upload.png", full_page=True)
        # Two payments (the upload slot, then the edit), each signed once; the upload confirmed by sign-in.
        assert wallet.calls.count("eth_signTypedData_v4") == 2
        assert len(await transfers_from(devnet, payer.address)) == 2
        assert wallet.calls.count("personal_sign") == 2  # the upload's confirm, the job's events
        await context.close()


async def test_a_failed_job_shows_its_refund(devnet: Devnet, tmp_path: Path, browser: Browser) -> None:
    from studio402.backends.base import FailureCode
    from tests.fakes.scripted import ScriptedBackend, only

    payer = await new_payer(devnet, 5_000_000)
    wallet = TestWallet(payer.key, devnet.info.chain_id)
    registry = only(ScriptedBackend(fail=FailureCode.MODERATED))
    overrides = {"admin.token": TOKEN}
    async with running_server(devnet, tmp_path / "data", registry=registry, overrides=overrides) as server:
        context = await browser.new_context(viewport={"width": 1000, "height": 900})
        await wallet.install(context)
        page = await context.new_page()
        await page.goto(server.base + "/")
        await page.wait_for_selector("body[data-ready='1']")
        await page.select_option("#route", label="nano-banana/generate")
        await page.fill("textarea[name=prompt]", "something the upstream refuses")
        await page.click("#pay")  # at once: the quote is brought up to date when paying
        await expect(page.locator("#status")).to_contain_text("failed", timeout=60_000)
        await expect(page.locator("#status")).to_contain_text("refund")
        figure = page.locator("#gallery figure")
        for _ in range(40):  # the on-chain refund lands shortly after the job fails
            await page.click("#gallery-load")
            await expect(figure).to_have_count(1)
            if "done" in (await figure.inner_text()):
                break
            await page.wait_for_timeout(250)
        await expect(figure).to_contain_text("refund")
        await expect(figure).to_contain_text("done")
        await expect(page.locator("#quote")).to_have_text("$0.067")
        await page.screenshot(path=ARTIFACTS / "studio-refund.png", full_page=True)
        admin = await context.new_page()
        await admin.goto(server.base + "/admin")
        await admin.fill("#token", TOKEN)
        await admin.click("#login button")
        await expect(admin.locator("#refunds")).to_contain_text("onchain")
        await expect(admin.locator("#recent-refunds")).to_contain_text("done")
        await expect(admin.locator("#backends")).to_contain_text(
            "failing"
        )  # every job of the last hour failed
        await context.close()


async def test_a_page_on_another_origin_reads_the_402(
    devnet: Devnet, tmp_path: Path, browser: Browser
) -> None:
    """CORS in a real browser: a page on http://localhost:<port> calls http://127.0.0.1:<port> (another
    origin; a JSON POST needs a preflight) and reads PAYMENT-REQUIRED, but only when that origin is
    configured."""
    from tests.server import free_port

    port = free_port()
    origin = f"http://localhost:{port}"
    script = """async (url) => {
        try {
            const r = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                                        body: JSON.stringify({prompt: "x"})});
            const header = r.headers.get("PAYMENT-REQUIRED");
            return {status: r.status, version: header && JSON.parse(atob(header)).x402Version};
        } catch (e) { return {error: String(e)}; }
    }"""
    answers = {}
    for allowed in (True, False):
        overrides = {"server.cors_origins": [origin] if allowed else []}
        data = tmp_path / f"data-{allowed}"
        async with running_server(devnet, data, port=port, overrides=overrides) as server:
            page = await browser.new_page()
            await page.goto(origin + "/")
            answers[allowed] = await page.evaluate(script, server.base + "/api/generate/nano-banana/generate")
            await page.close()
    assert answers[True] == {"status": 402, "version": 2}
    assert "error" in answers[False], answers  # the browser refused the cross-origin call
