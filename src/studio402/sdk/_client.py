"""`AsyncStudio`: pay a generate route, wait for the job, download its files, in one call.

    async with AsyncStudio("http://127.0.0.1:8402", Wallet(key), limits=SpendLimits(Price.from_usd(1))) as s:
        done = await s.generate("nano-banana", "generate", {"prompt": "a lighthouse"}, out_dir=Path("out"))

The paid POST answers a 402 with the official x402 client (the cheapest offer this wallet can pay) and
carries a payment identifier; a POST whose answer was lost is sent again with the same signed payment,
which the server answers with the same job (never a second charge). Jobs are read with one
SIGN-IN-WITH-X proof per URL, reused until it nears its expiry.
"""

from __future__ import annotations

import asyncio
import json as json_module
import mimetypes
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from studio402.sdk._errors import (
    JobFailed,
    JobTimeout,
    PaymentFailed,
    ServerError,
    SignInRequired,
    StudioError,
)
from studio402.sdk._models import Generated, Job, JobStatus, Price, Quote, Route
from studio402.sdk._mpp import challenge_price, paying_transport, tempo_challenge
from studio402.sdk._payment import (
    PAYMENT_REQUIRED,
    PAYMENT_RESPONSE,
    PAYMENT_SIGNATURE,
    Signed,
    Spending,
    SpendLimits,
    decode_header,
    new_payment_id,
    payable,
    sign_payment,
)
from studio402.sdk._signin import SignIns
from studio402.sdk._wallet import Wallet

SIWX_HEADER = "SIGN-IN-WITH-X"
EXTENSIONS = {"jpeg": "jpg", "svg+xml": "svg", "quicktime": "mov"}

OnUpdate = Callable[[Job], None]


class AsyncStudio:
    def __init__(
        self,
        server: str,
        wallet: Wallet | None = None,
        *,
        limits: SpendLimits | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 120,
        retries: int = 3,
        max_poll_seconds: float = 2.0,
        networks: Sequence[str] = (),
        follow_events: bool = False,
    ) -> None:
        """`networks`: pay only on these CAIP-2 prefixes (e.g. `("solana:",)`), and sign in with that key.
        `follow_events`: wait for jobs on their server-sent events stream instead of polling."""
        self.server = server.rstrip("/")
        self.wallet = wallet
        self.spending = Spending(limits or SpendLimits())
        self.networks = tuple(networks)
        solana_only = bool(networks) and all(n.startswith("solana") for n in networks)
        prefer = "ed25519" if solana_only else "eip191"
        self.signins = SignIns(wallet, prefer=prefer) if wallet is not None else None
        self._x402 = wallet.x402_client() if wallet is not None else None
        self._http = httpx.AsyncClient(base_url=self.server, timeout=timeout, transport=transport)
        self._timeout = timeout
        self._follow_events = follow_events
        self.on_phase: Callable[[str], None] | None = None  # 'uploading …', 'paying …', 'downloading …'
        self._retries = retries
        self._max_poll = max_poll_seconds
        self._openapi: dict[str, Any] | None = None

    async def __aenter__(self) -> AsyncStudio:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- discovery and prices ----------------------------------------------------------------------------

    async def openapi(self) -> dict[str, Any]:
        if self._openapi is None:
            self._openapi = _json(await self._checked("GET", "/api/openapi.json"))
        return self._openapi

    async def models(self) -> list[Route]:
        """Every paid generate route the server lists."""
        routes = []
        for path, item in (await self.openapi())["paths"].items():
            if not path.startswith("/api/generate/") or "post" not in item:
                continue
            post = item["post"]
            model, operation = path.removeprefix("/api/generate/").split("/", 1)
            price = (post.get("x-payment") or {}).get("price") or {}
            tags = post.get("tags") or ["?"]
            summary = str(post.get("summary", ""))
            routes.append(Route(model, operation, tags[0], summary, price.get("min"), price.get("max"), path))
        return routes

    async def offers(self) -> list[dict[str, str]]:
        """The (network, asset) pairs the server takes, from its OpenAPI `x-payment` offers."""
        seen: dict[tuple[str, str], dict[str, str]] = {}
        for item in (await self.openapi())["paths"].values():
            for offer in ((item.get("post") or {}).get("x-payment") or {}).get("accepts") or []:
                key = (str(offer["network"]), str(offer["asset"]))
                seen.setdefault(key, {"network": key[0], "asset": key[1]})
        return list(seen.values())

    async def body_schema(self, model: str, operation: str) -> dict[str, Any]:
        """The JSON schema of a route's body (its `$ref` resolved)."""
        spec = await self.openapi()
        post = spec["paths"].get(f"/api/generate/{model}/{operation}", {}).get("post")
        if post is None:
            raise StudioError(f"the server has no route {model}/{operation}", code="unknown_route")
        schema: dict[str, Any] = post["requestBody"]["content"]["application/json"]["schema"]
        ref = schema.get("$ref")
        if isinstance(ref, str):
            schema = spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]
        return schema

    async def quote(self, model: str, operation: str, body: Mapping[str, Any]) -> Quote:
        data = _json(await self._checked("POST", f"/api/quote/{model}/{operation}", json=dict(body)))
        return Quote(
            model=data["model"],
            operation=data["operation"],
            price=Price(int(data["micros"])),
            rule=str(data.get("rule", "")),
            request=data.get("request") or {},
            accepts=data.get("accepts") or [],
        )

    # -- paying ------------------------------------------------------------------------------------------

    async def generate(
        self,
        model: str,
        operation: str,
        body: Mapping[str, Any],
        *,
        files: Mapping[str, Path | Sequence[Path]] | None = None,
        wait: bool = True,
        out_dir: Path | None = None,
        payment_id: str | None = None,
        timeout: float = 600,
        on_update: OnUpdate | None = None,
    ) -> Generated:
        """Pay for one generation; with `wait`, follow the job to its end and save its files in `out_dir`.
        `files` maps media fields to local files: each is uploaded (a paid upload) and its blobUrl sent.
        The same `payment_id` on another call returns that call's job instead of paying again."""
        request = dict(body)
        for field, paths in (files or {}).items():
            if isinstance(paths, Path):
                request[field] = await self.upload(paths)
            else:
                request[field] = [await self.upload(p) for p in paths]
        self._phase(f"paying {model}/{operation}")
        created, signed, receipt = await self.pay(
            f"/api/generate/{model}/{operation}", request, payment_id=payment_id
        )
        job_id = str(created["jobId"])
        done = Generated(job_id, JobStatus(created.get("status", "pending")), signed.price, payment=receipt)
        if not wait:
            return done
        if self._follow_events:
            job = await self.follow(job_id, timeout=timeout, on_update=on_update)
        else:
            job = await self.wait(job_id, timeout=timeout, on_update=on_update)
        if job.status is not JobStatus.COMPLETE:
            error = job.error or {}
            raise JobFailed(
                f"job {job_id} {job.status.value}: {error.get('message', '')}",
                code=error.get("code") or f"job_{job.status.value}",
                job=job,
            )
        files_saved = await self.download(job, out_dir or Path("."))
        return Generated(job_id, job.status, signed.price, job, job.urls, files_saved, receipt)

    async def pay(
        self, path: str, body: Mapping[str, Any], *, payment_id: str | None = None
    ) -> tuple[dict[str, Any], Signed, dict[str, Any] | None]:
        """POST a paid route: its JSON answer, the payment sent and the decoded settlement receipt. x402
        when this wallet can pay an x402 offer, else MPP on Tempo when the wallet has a Tempo rail."""
        if self.wallet is None or self._x402 is None:
            raise StudioError("paying needs a wallet", code="no_wallet")
        asked = await self._ask(path, body)
        required = decode_header(asked.headers.get(PAYMENT_REQUIRED, "e30="))
        challenge = tempo_challenge(asked) if self.wallet.tempo is not None else None
        wants_tempo = any(n.startswith("tempo") for n in self.networks)
        if challenge is not None and (wants_tempo or not payable(self.wallet, required, self.networks)):
            return await self._pay_mpp(path, body, challenge_price(challenge))
        signed = await sign_payment(
            self._x402, self.wallet, required, self.spending, payment_id or new_payment_id(), self.networks
        )
        answer = await self._spend(
            signed.price, self._send_paid(path, body, {PAYMENT_SIGNATURE: signed.header})
        )
        receipt = answer.headers.get(PAYMENT_RESPONSE)
        return _json(answer), signed, decode_header(receipt) if receipt else None

    async def _pay_mpp(
        self, path: str, body: Mapping[str, Any], price: Price
    ) -> tuple[dict[str, Any], Signed, dict[str, Any] | None]:
        assert self.wallet is not None
        self.spending.check(price)
        paying, recorded = paying_transport(self.wallet)

        async def send() -> httpx.Response:
            async with httpx.AsyncClient(
                transport=paying, base_url=self.server, timeout=self._timeout
            ) as http:
                try:
                    answer = await http.post(path, json=dict(body))
                except httpx.TransportError:
                    if recorded.credential is None:
                        raise
                    return await self._send_paid(path, body, {"Authorization": recorded.credential})
            if answer.status_code == 402:
                raise PaymentFailed(
                    "the server refused the MPP credential", code="payment_refused", status=402
                )
            _raise_problem(answer)
            return answer

        answer = await self._spend(price, send())
        receipt = answer.headers.get("payment-receipt")
        signed = Signed(recorded.credential or "", price, "tempo", "")
        return _json(answer), signed, {"network": "tempo", "receipt": receipt} if receipt else None

    async def _spend(self, price: Price, paying: Awaitable[httpx.Response]) -> httpx.Response:
        """Count `price` against the session limit unless the server refused the payment outright."""
        self.spending.add(price)
        try:
            return await paying
        except (ServerError, PaymentFailed):
            self.spending.release(price)  # refused: nothing was charged
            raise

    async def _ask(self, path: str, body: Mapping[str, Any]) -> httpx.Response:
        asked = await self._send("POST", path, json=dict(body))
        if asked.status_code != 402:
            _raise_problem(asked)
            raise StudioError(f"{path} answered {asked.status_code} without asking for a payment")
        return asked

    async def payment_required(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """The decoded PAYMENT-REQUIRED a paid route answers an unpaid request with (a problem raises)."""
        return decode_header((await self._ask(path, body)).headers[PAYMENT_REQUIRED])

    async def pay_with(
        self, path: str, body: Mapping[str, Any], header: str
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """POST a paid route with a PAYMENT-SIGNATURE someone else signed (an agent's own wallet); the
        answer and the decoded receipt. Lost answers are retried with the same payment."""
        answer = await self._send_paid(path, body, {PAYMENT_SIGNATURE: header})
        receipt = answer.headers.get(PAYMENT_RESPONSE)
        return _json(answer), decode_header(receipt) if receipt else None

    async def _send_paid(self, path: str, body: Mapping[str, Any], paying: dict[str, str]) -> httpx.Response:
        """The paid POST, sent again (the same payment) when its answer was lost or is still settling."""
        for attempt in range(self._retries + 1):
            last = attempt == self._retries
            try:
                answer = await self._http.post(path, json=dict(body), headers=paying)
            except httpx.TransportError:
                if last:
                    raise
                await asyncio.sleep(0.2 * 2**attempt)
                continue
            if answer.status_code == 409 and _code(answer) == "payment_in_progress" and not last:
                await asyncio.sleep(0.5 * 2**attempt)
                continue
            if answer.status_code == 402:
                refused = decode_header(answer.headers.get(PAYMENT_REQUIRED, "e30="))
                reason = str(refused.get("error") or _code(answer) or "payment_refused")
                raise PaymentFailed(f"the server refused the payment: {reason}", code=reason, status=402)
            _raise_problem(answer)
            return answer
        raise AssertionError("unreachable")

    async def upload(self, path: Path) -> str:
        """The paid 3-step upload of a local file; its blobUrl (usable in any media field)."""
        self._phase(f"uploading {path.name}")
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        slot, _, _ = await self.pay("/api/upload", {"filename": path.name, "contentType": content_type})
        put = await self._http.put(
            slot["uploadUrl"], content=path.read_bytes(), headers=slot["uploadHeaders"]
        )
        _raise_problem(put)
        confirm = {"uploadId": slot["uploadId"], "blobUrl": slot["blobUrl"]}
        confirmed = _json(await self._signed("POST", "/api/upload/confirm", json=confirm))
        return str(confirmed["upload"]["blobUrl"])

    # -- jobs --------------------------------------------------------------------------------------------

    async def job(self, job_id: str, *, sign_in: str | None = None) -> Job:
        """The job's current view; `sign_in` reads it with someone else's SIGN-IN-WITH-X proof for this
        job's URL (SignInRequired, carrying the challenge, when it is missing or no longer valid)."""
        path = f"/api/jobs/{job_id}"
        if sign_in is None and self.signins is not None:
            return Job.from_json(_json(await self._signed("GET", path)))
        answer = await self._send("GET", path, headers={SIWX_HEADER: sign_in} if sign_in else {})
        if answer.status_code == 402:
            challenge = decode_header(answer.headers[PAYMENT_REQUIRED])
            raise SignInRequired(
                f"reading {path} needs a SIGN-IN-WITH-X proof of the payer",
                payment_required=challenge,
                url=f"{self.server}{path}",
            )
        _raise_problem(answer)
        return Job.from_json(_json(answer))

    async def jobs(self, *, limit: int = 20, status: str | None = None) -> list[Job]:
        query = {"limit": str(limit), **({"status": status} if status else {})}
        data = _json(await self._signed("GET", "/api/jobs", query=query))
        return [Job.from_json(j) for j in data["jobs"]]

    async def follow(self, job_id: str, *, timeout: float = 600, on_update: OnUpdate | None = None) -> Job:
        """Follow the job's server-sent events until it ends (one sign-in); polls if the stream ends early."""
        if self.signins is None:
            raise StudioError("reading jobs needs a wallet", code="no_wallet")
        url = f"{self.server}/api/jobs/{job_id}/events"
        header = self.signins.cached(url)
        if header is None:
            header = await self._sign(url, await self._send("GET", url))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        read = httpx.Timeout(self._timeout, read=60)  # the server sends a keep-alive every 15 s
        async with (
            asyncio.timeout(timeout),
            self._http.stream("GET", url, headers={SIWX_HEADER: header}, timeout=read) as stream,
        ):
            if stream.status_code >= 400:
                await stream.aread()
                _raise_problem(stream)
            async for event in _events(stream):
                job = Job.from_json(event)
                if on_update is not None:
                    on_update(job)
                if job.status.is_terminal:
                    return job
        left = max(1.0, deadline - loop.time())
        return await self.wait(job_id, timeout=left, on_update=on_update)

    def _phase(self, text: str) -> None:
        if self.on_phase is not None:
            self.on_phase(text)

    async def _sign(self, url: str, challenge: httpx.Response) -> str:
        """A proof answering the auth-only 402 `challenge` of `url`."""
        assert self.signins is not None
        if challenge.status_code != 402:
            _raise_problem(challenge)
            raise StudioError(f"{url} answered {challenge.status_code} without asking to sign in")
        return await self.signins.sign(url, decode_header(challenge.headers[PAYMENT_REQUIRED]))

    async def wait(
        self,
        job_id: str,
        *,
        timeout: float = 600,
        on_update: OnUpdate | None = None,
        sign_in: str | None = None,
    ) -> Job:
        """Poll the job until it ends (one sign-in, reused); `on_update` sees each change."""
        loop = asyncio.get_running_loop()
        deadline, seen = loop.time() + timeout, None
        while True:
            job = await self.job(job_id, sign_in=sign_in)
            if on_update is not None and (job.status, job.progress) != seen:
                on_update(job)
                seen = (job.status, job.progress)
            if job.status.is_terminal:
                return job
            if loop.time() > deadline:
                raise JobTimeout(f"job {job_id} still {job.status.value} after {timeout:g} s")
            await asyncio.sleep(min(self._max_poll, float(job.raw.get("pollIntervalSeconds") or 2)))

    async def download(self, job: Job, out_dir: Path, *, sign_in: str | None = None) -> list[Path]:
        """Save a complete job's files; URLs that expired meanwhile are signed afresh by reading the job."""
        out_dir.mkdir(parents=True, exist_ok=True)
        files = []
        for kind in list(job.urls):
            self._phase(f"downloading {kind}")
            response = await self._http.get(job.urls[kind])
            if response.status_code in (401, 403, 404, 410):
                job = await self.job(job.job_id, sign_in=sign_in)
                response = await self._http.get(job.urls[kind])
            _raise_problem(response)
            subtype = response.headers.get("content-type", "application/octet-stream").split(";")[0]
            suffix = subtype.split("/")[-1]
            path = out_dir / f"{job.job_id}-{kind}.{EXTENSIONS.get(suffix, suffix)}"
            path.write_bytes(response.content)
            files.append(path)
        return files

    # -- HTTP --------------------------------------------------------------------------------------------

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """A request that pays nothing, retried when the connection fails."""
        for attempt in range(self._retries + 1):
            try:
                return await self._http.request(method, url, **kwargs)
            except httpx.TransportError:
                if attempt == self._retries:
                    raise
                await asyncio.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")

    async def _checked(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = await self._send(method, url, **kwargs)
        _raise_problem(response)
        return response

    async def _signed(
        self, method: str, path: str, *, query: Mapping[str, str] | None = None, json: Any = None
    ) -> httpx.Response:
        """A SIGN-IN-WITH-X request; the proof is bound to this exact URL and reused while it is valid."""
        if self.signins is None:
            raise StudioError("reading jobs needs a wallet", code="no_wallet")
        url = f"{self.server}{path}" + (f"?{urlencode(query)}" if query else "")
        for attempt in range(2):
            header = self.signins.cached(url)
            if header is None:
                challenge = await self._send(method, url, json=json)
                if challenge.status_code != 402:
                    _raise_problem(challenge)
                    return challenge
                header = await self._sign(url, challenge)
            response = await self._send(method, url, json=json, headers={SIWX_HEADER: header})
            if response.status_code == 402 and attempt == 0:  # expired or refused: sign once more
                self.signins.forget(url)
                continue
            _raise_problem(response)
            return response
        raise AssertionError("unreachable")


async def _events(stream: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The `data:` payloads of a server-sent event stream (one JSON object per event)."""
    data: list[str] = []
    async for line in stream.aiter_lines():
        if line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            yield _loads("\n".join(data))
            data = []


def _loads(text: str) -> dict[str, Any]:
    value: dict[str, Any] = json_module.loads(text)
    return value


def _json(response: httpx.Response) -> dict[str, Any]:
    data: dict[str, Any] = response.json()
    return data


def _code(response: httpx.Response) -> str | None:
    try:
        code = response.json().get("code")
    except ValueError:
        return None
    return str(code) if code else None


def _raise_problem(response: httpx.Response) -> None:
    """A ServerError carrying the problem's `code` for any 4xx/5xx answer."""
    if response.status_code < 400:
        return
    try:
        problem = response.json()
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    detail = str(
        problem.get("detail") or problem.get("title") or response.text[:200] or response.reason_phrase
    )
    code = problem.get("code") or f"http_{response.status_code}"
    raise ServerError(detail, code=str(code), status=response.status_code, problem=problem)
