"""The library API (spec section 6) and the features beyond the anchors: paper <-> code links,
GitHub Pages links, star trends."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fakeapi.arxiv import FakeArxiv
from fakeapi.github import FakeGitHub

import enrich
from enrich.config import Config


def _config(arxiv: FakeArxiv, github: FakeGitHub) -> Config:
    return Config.load(env={}, overrides={
        "arxiv.api_url": arxiv.api_url, "arxiv.min_interval": 0,
        "github.api_url": github.url, "github.graphql_url": github.url + "/graphql",
        "http.timeout": 2, "http.backoff": 0.01, "http.backoff_max": 0.05,
        "cache.path": str(Path.cwd() / "c.sqlite3"),
    })


def test_public_surface_is_locked() -> None:
    assert enrich.__all__ == sorted(enrich.__all__)
    assert set(enrich.__all__) == {
        "CacheError", "CacheLockedError", "Config", "ConfigError", "EnrichError",
        "EnrichedDocument", "Enricher", "FetchError", "InputError", "Link", "Paper",
        "RateLimitedError", "Repo", "RunReport", "__version__", "enrich_text", "extract",
        "render_markdown", "run_files"}
    for name in enrich.__all__:
        assert getattr(enrich, name) is not None
    for err in ("CacheError", "ConfigError", "InputError", "FetchError", "CacheLockedError",
                "RateLimitedError"):
        assert issubclass(getattr(enrich, err), enrich.EnrichError)


def test_extract_needs_no_network() -> None:
    links = enrich.extract("见 arXiv:2106.09685v2 与 github.com/microsoft/LoRA。")
    assert [(lk.kind, lk.id, lk.version) for lk in links] == [
        ("arxiv", "2106.09685", "v2"), ("github", "microsoft/lora", None)]


def test_enrich_text_sync_and_async_share_the_cache(
        arxiv_server: FakeArxiv, github_server: FakeGitHub) -> None:
    arxiv_server.add_paper("2106.09685", title="LoRA: Low-Rank Adaptation")
    github_server.add_repo("microsoft/LoRA", stars=10_000)
    cfg = _config(arxiv_server, github_server)
    text = "LoRA https://arxiv.org/abs/2106.09685 code https://github.com/microsoft/LoRA\n"
    doc = enrich.enrich_text(text, cfg)
    assert doc.papers["2106.09685"].title == "LoRA: Low-Rank Adaptation"
    assert doc.repos["microsoft/lora"].stars == 10_000
    n = arxiv_server.count() + github_server.count()

    async def twice() -> list[enrich.EnrichedDocument]:
        async with enrich.Enricher(cfg) as e:
            return [await e.enrich_text(text), await e.enrich_text(text)]

    docs = asyncio.run(twice())
    assert arxiv_server.count() + github_server.count() == n  # all from the cache
    assert docs[0].papers == doc.papers
    md = enrich.render_markdown(text, doc)
    assert md.startswith(text) and "LoRA: Low-Rank Adaptation" in md
    assert '"schema_version":1' in doc.model_dump_json()


def test_a_cache_handed_to_the_enricher_stays_open_for_its_owner(
        arxiv_server: FakeArxiv, github_server: FakeGitHub, tmp_path: Path) -> None:
    from enrich.store import Store

    arxiv_server.add_paper("2106.09685", title="LoRA: Low-Rank Adaptation")
    cfg = _config(arxiv_server, github_server)
    with Store(tmp_path / "mine.sqlite3") as store:
        async def go() -> enrich.EnrichedDocument:
            async with enrich.Enricher(cfg, store=store) as e:
                return await e.enrich_text("https://arxiv.org/abs/2106.09685\n")

        doc = asyncio.run(go())
        assert doc.papers["2106.09685"].status == "ok"
        # written to the store handed in, not to config.cache_path, and still open
        assert set(store.get_papers(["2106.09685"])) == {"2106.09685"}
    assert not Path(cfg.cache_path).exists()


def test_paper_to_code_both_ways_and_linked_records_are_fetched(
        arxiv_server: FakeArxiv, github_server: FakeGitHub) -> None:
    arxiv_server.add_paper("2305.14314", title="QLoRA",
                           abstract="We release code at https://github.com/artidoro/qlora.")
    github_server.add_repo("artidoro/qlora", stars=9000)
    github_server.add_repo("huggingface/peft", stars=15000,
                           description="Parameter-efficient fine-tuning (arXiv:2106.09685)")
    arxiv_server.add_paper("2106.09685", title="LoRA")
    cfg = _config(arxiv_server, github_server)
    doc = enrich.enrich_text("读 https://arxiv.org/abs/2305.14314 和 github.com/huggingface/peft\n",
                             cfg)
    assert doc.papers["2305.14314"].code == ["artidoro/qlora"]
    assert doc.repos["artidoro/qlora"].papers == ["2305.14314"]
    assert doc.repos["artidoro/qlora"].linked_from == ["2305.14314"]
    assert doc.repos["artidoro/qlora"].stars == 9000
    assert doc.repos["huggingface/peft"].papers == ["2106.09685"]
    assert doc.papers["2106.09685"].linked_from == ["huggingface/peft"]
    assert doc.papers["2106.09685"].title == "LoRA"
    assert doc.papers["2305.14314"].linked_from is None
    # the links list holds only what the text says
    assert {lk.id for lk in doc.links} == {"2305.14314", "huggingface/peft"}
    md = enrich.render_markdown("x\n", doc)
    assert "artidoro/qlora" in md


def test_documents_enriched_together_keep_their_own_records(
        arxiv_server: FakeArxiv, github_server: FakeGitHub) -> None:
    # The first document takes a record as the pipeline holds it, updated in place;
    # the second gets a copy, which must not carry what the first one set.
    arxiv_server.add_paper("2305.14314", title="QLoRA",
                           abstract="We release code at https://github.com/artidoro/qlora.")
    github_server.add_repo("artidoro/qlora", stars=9000)
    cfg = _config(arxiv_server, github_server)

    async def both() -> list[enrich.EnrichedDocument]:
        async with enrich.Enricher(cfg) as e:
            return await e.enrich_many([("读 arXiv:2305.14314\n", None),
                                        ("代码 github.com/artidoro/qlora\n", None)])

    first, second = asyncio.run(both())
    assert first.repos["artidoro/qlora"].linked_from == ["2305.14314"]
    assert second.repos["artidoro/qlora"].linked_from is None
    assert second.repos["artidoro/qlora"].papers == ["2305.14314"]
    assert first.repos["artidoro/qlora"] is not second.repos["artidoro/qlora"]
    assert first.papers["2305.14314"].linked_from is None
    assert second.papers["2305.14314"].linked_from == ["artidoro/qlora"]


def test_github_pages_links_are_enriched_when_the_repository_exists(
        arxiv_server: FakeArxiv, github_server: FakeGitHub) -> None:
    github_server.add_repo("kaistAI/SelFee", stars=200)
    cfg = _config(arxiv_server, github_server)
    text = "demo：https://kaistai.github.io/SelFee/demo ；博客 https://someone.github.io/notes.html\n"
    doc = enrich.enrich_text(text, cfg)
    pages = [lk for lk in doc.links if lk.via == "pages"]
    assert [lk.id for lk in pages] == ["kaistai/selfee"]
    assert doc.repos["kaistai/selfee"].stars == 200
    assert set(doc.repos) == {"kaistai/selfee"}
    assert '"via":"pages"' in doc.model_dump_json()
    # plain extraction never reports pages links (they need the API to be verified)
    assert enrich.extract(text) == []


def test_star_trend_from_history_in_the_document(
        arxiv_server: FakeArxiv, github_server: FakeGitHub) -> None:
    github_server.add_repo("karpathy/nanoGPT", stars=100)
    cfg = _config(arxiv_server, github_server)
    text = "https://github.com/karpathy/nanoGPT\n"
    t0 = datetime(2026, 11, 1, 3, tzinfo=UTC)
    days = iter(range(100))

    def run(stars: int) -> enrich.EnrichedDocument:
        github_server.set_stars("karpathy/nanogpt", stars)
        d = next(days)
        now = t0 + timedelta(days=d, hours=d)

        async def go() -> enrich.EnrichedDocument:
            async with enrich.Enricher(cfg, now=lambda: now) as e:
                return await e.enrich_text(text)

        return asyncio.run(go())

    assert run(100).repos["karpathy/nanogpt"].trend is None
    run(130)
    doc = run(160)
    trend = doc.repos["karpathy/nanogpt"].trend
    assert trend is not None and trend.since_previous == 30 and trend.sparkline
    for stars in (170, 180, 190, 200, 210, 220):
        doc = run(stars)
    trend = doc.repos["karpathy/nanogpt"].trend
    assert trend is not None and trend.week == 90  # 220 on day 8, 130 on day 1
    assert trend.since_previous == 10
    assert "this week" in enrich.render_markdown(text, doc)


@pytest.mark.parametrize("bad", ["arxiv.batch_size", "github.concurrency"])
def test_config_errors_are_enrich_errors(bad: str) -> None:
    with pytest.raises(enrich.EnrichError):
        Config.load(env={}, overrides={bad: "lots"})


def test_a_survey_naming_many_repositories_links_only_the_first_few(
        arxiv_server: FakeArxiv, github_server: FakeGitHub) -> None:
    from enrich.pipeline import MAX_CROSS_LINKS

    names = [f"org/repo{i}" for i in range(12)]
    arxiv_server.add_paper("2401.00001", title="A survey",
                           abstract=" ".join(f"https://github.com/{n}" for n in names))
    for n in names:
        github_server.add_repo(n, stars=1)
    doc = enrich.enrich_text("https://arxiv.org/abs/2401.00001\n",
                             _config(arxiv_server, github_server))
    assert doc.papers["2401.00001"].code == names[:MAX_CROSS_LINKS]
    assert set(doc.repos) == set(names[:MAX_CROSS_LINKS])
    assert github_server.count(endpoint="rest") == MAX_CROSS_LINKS


def test_trends_command_sorts_a_logs_repositories_by_weekly_growth(
        arxiv_server: FakeArxiv, github_server: FakeGitHub, tmp_path: Path) -> None:
    from support import run_cli, write_config

    github_server.add_repo("slow/grower", stars=100)
    github_server.add_repo("fast/grower", stars=100)
    github_server.add_repo("fresh/comer", stars=5)
    cfg_file = write_config(tmp_path / "config.yaml", arxiv_server, github_server)
    cfg = Config.load(cfg_file, env={})
    log = tmp_path / "log.txt"
    log.write_text("github.com/slow/grower github.com/fast/grower\n", encoding="utf-8")
    t0 = datetime(2026, 11, 1, 3, tzinfo=UTC)
    for day in range(9):
        github_server.set_stars("slow/grower", 100 + day)
        github_server.set_stars("fast/grower", 100 + 20 * day)
        now = t0 + timedelta(days=day, hours=day)

        async def go(now: datetime = now) -> None:
            async with enrich.Enricher(cfg, now=lambda: now) as e:
                await e.enrich_text(log.read_text(encoding="utf-8"))

        asyncio.run(go())
    log.write_text(log.read_text(encoding="utf-8") + "github.com/fresh/comer\n", encoding="utf-8")
    code, out, _ = run_cli("trends", "--file", str(log), "--config", str(cfg_file))
    assert code == 0
    rows = [ln.split() for ln in out.splitlines()[1:]]
    assert [r[0] for r in rows] == ["fast/grower", "slow/grower", "fresh/comer"]
    assert rows[0][3] == "+140" and rows[1][3] == "+7"   # WEEK: day 8 against day 1
    assert rows[0][2] == "+20" and rows[1][2] == "+1"    # LAST: since the run before
    assert rows[2][1:5] == ["-", "-", "-", "-"]          # never observed: no figures


def test_progress_hook_counts_every_id_once_whether_cached_or_fetched(
        arxiv_server: FakeArxiv, github_server: FakeGitHub) -> None:
    arxiv_server.add_paper("1706.03762")
    github_server.add_repo("karpathy/nanoGPT")
    cfg = _config(arxiv_server, github_server)
    text = "arXiv:1706.03762 github.com/karpathy/nanoGPT github.com/missing/repo\n"
    for _ in range(2):  # cold, then all from the cache
        done: dict[str, int] = {"arxiv": 0, "github": 0}

        def hook(source: str, n: int, done: dict[str, int] = done) -> None:
            done[source] += n

        async def go(hook: object = hook) -> None:
            async with enrich.Enricher(cfg, progress=hook) as e:  # type: ignore[arg-type]
                await e.enrich_text(text)

        asyncio.run(go())
        assert done == {"arxiv": 1, "github": 2}


def test_batches_are_cached_as_they_arrive(
        arxiv_server: FakeArxiv, github_server: FakeGitHub) -> None:
    # While the last arXiv batch and the last GraphQL query are still on the wire, the
    # earlier batches are in the cache already; the document shows each record with the
    # time the cache stamped it, so the next run serves exactly the same records.
    import sqlite3

    ids = [f"2301.0000{n}" for n in range(1, 4)]
    for pid in ids:
        arxiv_server.add_paper(pid, title=f"Paper {pid}")
    names = [f"owner{n}/repo{n}" for n in range(1, 4)]
    for name in names:
        github_server.add_repo(name)
    github_server.tokens["tok"] = "alice"
    cfg = _config(arxiv_server, github_server)
    cfg.arxiv.batch_size = cfg.github.batch_size = 1
    cfg.token = "tok"
    release = threading.Event()
    for srv, endpoint in ((arxiv_server, "query"), (github_server, "graphql")):
        srv.faults.add(endpoint, "slow", times=2, seconds=0.0)
        srv.faults.add(endpoint, "block", event=release)  # the third batch waits for us
    text = " ".join(f"arXiv:{p} github.com/{n}" for p, n in zip(ids, names, strict=True))
    seen: dict[str, set[str]] = {}

    def cached() -> dict[str, set[str]]:
        if not Path(cfg.cache_path).exists():
            return {"papers": set(), "repos": set()}
        con = sqlite3.connect(f"file:{cfg.cache_path}?mode=ro", uri=True)
        try:
            return {"papers": {r[0] for r in con.execute("SELECT id FROM papers")},
                    "repos": {r[0] for r in con.execute("SELECT key FROM repos")}}
        except sqlite3.OperationalError:  # the tables are not there yet
            return {"papers": set(), "repos": set()}
        finally:
            con.close()

    async def go() -> enrich.EnrichedDocument:
        async with enrich.Enricher(cfg) as e:
            task = asyncio.ensure_future(e.enrich_text(text))
            try:
                # the third requests are held by the fakes: the first two batches can
                # reach the cache, the third cannot until ``release`` is set
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and not task.done():
                    seen.update(cached())
                    if (arxiv_server.count("query") >= 3 and github_server.count("graphql") >= 3
                            and len(seen["papers"]) >= 2 and len(seen["repos"]) >= 2):
                        break
                    await asyncio.sleep(0.02)
            finally:
                release.set()
            return await task

    doc = asyncio.run(go())
    assert seen == {"papers": set(ids[:2]), "repos": set(names[:2])}
    assert all(doc.papers[p].status == "ok" for p in ids)
    again = enrich.enrich_text(text, cfg)
    assert again.papers == doc.papers and again.repos == doc.repos
