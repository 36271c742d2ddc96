"""Browser journeys through the reviewer workbench: headless Chromium (Debian's) driven by Playwright.

Runs in ``.venv-browser`` (``make browser``), not in the main virtualenv: the main test suite
(tests/integration/test_workbench_journeys.py) starts the local stack, the API and the workbench, then
runs ``.venv-browser/bin/python tests/browser/journeys.py`` with one JSON spec on stdin and reads one
JSON result from stdout. The script only drives the page and reports what a person would see (texts,
which controls exist, notices) plus what the browser saw (console errors, page errors, dialogs, CSP
violations); the test asserts, and checks the outcome against the API and the table itself.

Spec: {"journey": NAME, "url": WORKBENCH_URL, "api_url": KYC_API_URL, "screenshot": PNG path,
       "user": {"name", "password"}, ...journey parameters}
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

CHROMIUM = os.environ.get("KYC_CHROMIUM", "/usr/bin/chromium")
# What works on a machine without network (and as root): no sandbox, no background traffic.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 20_000
# Runs before the page's own scripts (via the DevTools protocol, not as an inline script): records CSP
# violations, and a canary any injected script would trip.
WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""

JOURNEYS: dict[str, Callable[[Page, dict[str, Any]], dict[str, Any]]] = {}


def journey(function: Callable[[Page, dict[str, Any]], dict[str, Any]]) -> Callable[..., Any]:
    JOURNEYS[function.__name__] = function
    return function


def sign_in(page: Page, spec: dict[str, Any], user: dict[str, str] | None = None) -> None:
    user = user or spec["user"]
    page.goto(spec["url"])
    page.fill("#username", user["name"])
    page.fill("#password", user["password"])
    page.click("#signin-submit")
    page.wait_for_selector("#queue, #queue-empty")


def open_case(page: Page, review_id: str) -> None:
    page.evaluate("(id) => { location.hash = `#/case/${id}`; }", review_id)
    page.wait_for_selector(f"#case-id:text-is('{review_id}')")


def notice(page: Page) -> str:
    return page.locator("#notice").text_content() or ""


def wait_notice(page: Page) -> str:
    page.wait_for_selector("#notice:not([hidden])")
    return notice(page)


def verdict_items(page: Page) -> list[dict[str, str]]:
    return page.eval_on_selector_all(
        "#verdicts li.verdict",
        """(items) => items.map((li) => ({
            id: li.dataset.verdictId,
            value: li.querySelector('.verdict-value').textContent,
            status: li.querySelector('.verdict-status').textContent.replace(' · ', '').trim(),
            text: li.textContent,
            can_confirm: Boolean(li.querySelector('button.approve')),
        }))""",
    )


def controls(page: Page) -> dict[str, bool]:
    return {
        "claim": page.locator("#claim").count() > 0,
        "verdict_form": page.locator("#verdict-form").count() > 0,
        "approve": page.locator("button.approve").count() > 0,
        "read_only_note": page.locator("#read-only").count() > 0,
    }


@journey
def queue(page: Page, spec: dict[str, Any]) -> dict[str, Any]:
    """Sign in and read the queue as shown: case ids in order, ages, reasons."""
    sign_in(page, spec)
    if spec.get("reason"):
        page.select_option("#reason-filter", spec["reason"])
        page.wait_for_function("() => location.hash.includes('reason=')")
        page.wait_for_selector("#queue, #queue-empty")
    rows = page.eval_on_selector_all(
        "#queue tbody tr",
        """(rows) => rows.map((tr) => ({
            review_id: tr.dataset.reviewId,
            age: tr.querySelector('.age').textContent,
            reasons: [...tr.querySelectorAll('.reasons .tag')].map((t) => t.textContent),
            lease: tr.querySelector('.lease').textContent,
        }))""",
    )
    return {"rows": rows, "who": page.locator("#who").text_content()}


@journey
def reviewer_verdict(page: Page, spec: dict[str, Any]) -> dict[str, Any]:
    """Sign in, open the oldest case in the queue, claim it, look at the evidence, record attack/face swap."""
    sign_in(page, spec)
    first = page.locator("#queue tbody tr").first
    oldest = first.get_attribute("data-review-id")
    first.locator("a.case-link").click()
    page.wait_for_selector("#case-id")
    page.click("#claim")
    page.wait_for_selector("#verdict-form")
    claimed_notice = notice(page)
    sheet = page.locator("#contact-sheet")
    if sheet.count():
        page.wait_for_function("() => document.querySelector('#contact-sheet').complete")
    seen = {
        "sheet_width": page.eval_on_selector("#contact-sheet", "(img) => img.naturalWidth")
        if sheet.count()
        else 0,
        "face_rows": page.locator("#face-evidence tr.face-row").count(),
        "provenance_text": page.locator("#provenance").text_content(),
        "facts": page.locator(".case-facts").text_content(),
    }
    page.check("#verdict-attack")
    page.select_option("#attack-type", "face_swap")
    page.fill("#verdict-reason", spec.get("reason", "Blending seam along the jaw on frames 3-9."))
    page.click("#verdict-submit")
    page.wait_for_selector("#verdicts li.verdict")
    return {
        "oldest": oldest,
        "claimed_notice": claimed_notice,
        "seen": seen,
        "notice": notice(page),
        "verdicts": verdict_items(page),
    }


@journey
def approver_confirms(page: Page, spec: dict[str, Any]) -> dict[str, Any]:
    """An approver finds the case among those awaiting approval and confirms the verdict."""
    sign_in(page, spec)
    page.select_option("#state-filter", "awaiting_approval")
    page.wait_for_function("() => location.hash.includes('state=awaiting_approval')")
    page.wait_for_selector("#queue, #queue-empty")
    listed = page.eval_on_selector_all("#queue tbody tr", "(rows) => rows.map((tr) => tr.dataset.reviewId)")
    open_case(page, spec["review_id"])
    before = verdict_items(page)
    page.click("button.approve")
    page.wait_for_selector("#verdicts li.verdict.effective")
    return {"listed": listed, "before": before, "notice": notice(page), "verdicts": verdict_items(page)}


@journey
def case_view(page: Page, spec: dict[str, Any]) -> dict[str, Any]:
    """Open a case and report which controls the page offers and what the verdicts say."""
    sign_in(page, spec)
    open_case(page, spec["review_id"])
    result: dict[str, Any] = {"controls": controls(page), "verdicts": verdict_items(page)}
    if spec.get("click_claim") and result["controls"]["claim"]:
        page.click("#claim")
        result["notice"] = wait_notice(page)
        result["after"] = controls(page)
    return result


@journey
def hostile_strings(page: Page, spec: dict[str, Any]) -> dict[str, Any]:
    """Open a case whose applicant-controlled strings hold markup and script: what does the DOM hold?"""
    sign_in(page, spec)
    open_case(page, spec["review_id"])
    page.wait_for_timeout(500)  # time for anything injected to run (onerror of a broken image, say)
    return {
        "provenance_text": page.locator("#provenance").text_content(),
        "client_reference": page.locator(".case-facts").text_content(),
        "injected_elements": page.evaluate(
            """() => document.querySelectorAll(
                 '#case script, #case img:not(#contact-sheet), #case iframe, #case object, #case svg, '
                 + '#case [onerror], #case [onload], #case [onclick], #case a[href^="javascript"]').length"""
        ),
        "links": page.eval_on_selector_all("#case a", "(links) => links.map((a) => a.getAttribute('href'))"),
        "canary": page.evaluate("() => window.__pwned === undefined ? null : String(window.__pwned)"),
    }


@journey
def bad_token(page: Page, spec: dict[str, Any]) -> dict[str, Any]:
    """Sign in, then every API call carries the given token (expired or forged): the page must say so."""
    sign_in(page, spec)
    api_prefix = spec["api_url"].rstrip("/") + "/"

    def swap(route: Any) -> None:
        headers = {**route.request.headers, "authorization": f"Bearer {spec['token']}"}
        route.continue_(headers=headers)

    page.route(lambda url: url.startswith(api_prefix), swap)
    page.evaluate("() => { location.hash = '#/queue?state=all'; }")
    text = wait_notice(page)
    page.wait_for_selector("#signin")
    return {"notice": text, "signin_shown": page.locator("#signin").count() == 1}


@journey
def srp_vectors(page: Page, spec: dict[str, Any]) -> dict[str, Any]:
    """The page's own SRP module (web/js/srp.js), loaded under the page's CSP, on the spec's vectors."""
    page.goto(spec["url"])
    return page.evaluate(
        """async ({vectors, dates}) => {
            const srp = await import('./js/srp.js');
            const out = {vectors: [], dates: dates.map((ms) => srp.cognitoTimestamp(new Date(ms)))};
            for (const v of vectors) {
                try {
                    const began = performance.now();
                    const A = srp.ephemeralFrom(v.a).A;
                    const signature = await srp.passwordClaimSignature(v);
                    out.vectors.push({A, signature, ms: performance.now() - began});
                } catch (error) {
                    out.vectors.push({error: `${error.name}: ${error.message}`});
                }
            }
            const fresh = [srp.newEphemeral(), srp.newEphemeral()];
            out.fresh = fresh.map((e) => ({a: e.a, A: e.A}));
            return out;
        }""",
        {"vectors": spec["vectors"], "dates": spec["dates"]},
    )


@journey
def srp_sign_in(page: Page, spec: dict[str, Any]) -> dict[str, Any]:
    """Sign in through the form and report every request the page sent to the Cognito endpoint."""
    sent: list[dict[str, Any]] = []
    endpoint = spec["cognito_endpoint"].rstrip("/")

    def record(request: Any) -> None:
        if request.url.rstrip("/").startswith(endpoint) and request.method == "POST":
            sent.append({"target": request.headers.get("x-amz-target", ""), "body": request.post_data or ""})

    page.on("request", record)
    sign_in(page, spec)
    return {"requests": sent, "who": page.locator("#who").text_content() or ""}


def run(spec: dict[str, Any]) -> dict[str, Any]:
    console_errors: list[str] = []
    page_errors: list[str] = []
    dialogs: list[str] = []
    with tempfile.TemporaryDirectory(prefix="kyc-chromium-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.add_init_script(WATCH)
            page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda error: page_errors.append(str(error)))

            def on_dialog(dialog: Any) -> None:
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", on_dialog)
            outcome: dict[str, Any] = {"ok": True}
            try:
                outcome["result"] = JOURNEYS[spec["journey"]](page, spec)
            except Exception as exc:
                outcome = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            if spec.get("screenshot"):
                Path(spec["screenshot"]).parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=spec["screenshot"], full_page=True)
            outcome["violations"] = page.evaluate("() => window.__violations || []")
        finally:
            context.close()
    outcome.update(console_errors=console_errors, page_errors=page_errors, dialogs=dialogs)
    return outcome


if __name__ == "__main__":
    print(json.dumps(run(json.load(sys.stdin))))
