"""Throughput of enrich.extract against linkify-it-py on a synthetic research log.

Not part of the test suite. Run ``.venv/bin/python bench/extract.py [--mb 50]``.

The generated log imitates the user's logs: mostly Chinese sentences with
full-width punctuation, markdown bullets and image attachments, WeChat
article links, and an arXiv or GitHub link every few lines in the many forms
the extractor accepts. ``--save`` also writes it to ``bench/out/`` (ignored
by git) for profiling.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from enrich.extract import extract, find_pages_links  # noqa: E402

CJK_WORDS = [
    "大模型",
    "论文",
    "推理",
    "训练",
    "数据集",
    "开源",
    "多模态",
    "语言模型",
    "微调",
    "量化",
    "指令",
    "对齐",
    "评测",
    "检索增强",
    "智能体",
    "视觉",
    "长上下文",
    "注意力",
    "显存",
    "吞吐",
    "提出了",
    "一种",
    "新的",
    "方法",
    "基于",
    "框架",
    "实验",
    "结果",
    "表明",
    "效果",
    "显著",
    "提升",
    "中文",
    "金融",
    "医疗",
    "代码",
    "生成",
    "图像",
    "视频",
    "语音",
    "部署",
    "推荐",
]
PUNCT = ["，", "。", "、", "；", "：", "（", "）", "【", "】", "！", "？"]
ENGLISH = ["LLM", "LoRA", "RLHF", "Transformer", "GPU", "token", "benchmark", "SOTA", "7B", "QLoRA"]
LABELS = [
    "论文链接：",
    "项目链接：",
    "代码：",
    "Paper：",
    "Code：",
    "地址：",
    "开源地址：",
    "论文地址: ",
]


def _sentence(rng: random.Random) -> str:
    parts: list[str] = []
    for _ in range(rng.randint(8, 30)):
        r = rng.random()
        if r < 0.12:
            parts.append(rng.choice(ENGLISH))
        elif r < 0.30:
            parts.append(rng.choice(PUNCT))
        else:
            parts.append(rng.choice(CJK_WORDS))
    return "".join(parts) + "。"


def _new_id(rng: random.Random) -> str:
    return f"{rng.randint(20, 25):02d}{rng.randint(1, 12):02d}.{rng.randint(0, 99999):05d}"


def _repo(rng: random.Random) -> str:
    owner = rng.choice(
        [
            "flexflow",
            "hiyouga",
            "Vahe1994",
            "salesforce",
            "kaistAI",
            "yxuansu",
            "Ma-Lab-Berkeley",
            "oladata-team",
            "liutiedong",
            "XiaoxinHe",
        ]
    )
    name = rng.choice(
        [
            "FlexFlow",
            "ChatGLM-Efficient-Tuning",
            "SpQR",
            "UniControl",
            "SelFee",
            "PandaGPT",
            "CRATE",
            "OlaGPT",
            "goat",
            "Awesome-Graph-LLM",
            "m6doc.py",
        ]
    )
    return f"{owner}/{name}{rng.randint(0, 999)}"


def _link(rng: random.Random) -> str:
    i = _new_id(rng)
    forms: list[Callable[[], str]] = [
        lambda: f"https://arxiv.org/abs/{i}",
        lambda: f"https://arxiv.org/pdf/{i}.pdf",
        lambda: f"http://arxiv.org/abs/{i}v{rng.randint(1, 4)}",
        lambda: f"arxiv.org/html/{i}v1",
        lambda: f"arXiv:{i}",
        lambda: f"arXiv {i}",
        lambda: f"https://huggingface.co/papers/{i}",
        lambda: f"https://doi.org/10.48550/arXiv.{i}",
        lambda: "arXiv:hep-th/9901001",
        lambda: f"https://github.com/{_repo(rng)}",
        lambda: f"https://github.com/{_repo(rng)}/tree/main",
        lambda: f"github.com/{_repo(rng)}",
        lambda: f"[代码](https://github.com/{_repo(rng)})",
        lambda: f"<https://github.com/{_repo(rng)}.git>",
        lambda: f"https://{rng.choice(['kaistai', 'panda-gpt'])}.github.io/SelFee/",
    ]
    return rng.choice(forms)()


def _attachment(rng: random.Random) -> str:
    return (
        "![image](https://github.com/someone/notes.github.io/assets/45891944/"
        f"{rng.getrandbits(128):032x})"
    )


def _wechat(rng: random.Random) -> str:
    return f"原文：https://mp.weixin.qq.com/s/{rng.getrandbits(96):024x}"


def make_log(target_bytes: int, seed: int = 1) -> str:
    """A deterministic synthetic log of about ``target_bytes`` UTF-8 bytes."""
    rng = random.Random(seed)
    chunks: list[str] = []
    size = 0
    n = 0
    while size < target_bytes:
        r = rng.random()
        # Proportions of the user's logs: about one line in six holds a link,
        # one in eight an image attachment, one in eight a WeChat article.
        if r < 0.16:
            line = rng.choice(LABELS) + _link(rng) + rng.choice(["", " \\", "，" + _sentence(rng)])
        elif r < 0.28:
            line = _attachment(rng)
        elif r < 0.40:
            line = _wechat(rng)
        elif r < 0.52:
            line = f"* {rng.randint(1, 9)}、" + _sentence(rng)
        elif r < 0.55:
            line = f"# {rng.randint(1, 12)}.{rng.randint(1, 28)} 周报"
        else:
            line = _sentence(rng) + rng.choice(["", " \\"])
        chunks.append(line)
        size += len(line.encode("utf-8")) + 1
        n += 1
    return "\n".join(chunks) + "\n"


def _timed(fn: Callable[[], object], runs: int) -> tuple[list[float], object]:
    """Wall times of ``runs`` calls, fastest first, and the last result."""
    times: list[float] = []
    result: object = None
    for _ in range(runs):
        result = None  # free the previous result outside the timed region
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return sorted(times), result


def _best_of(fn: Callable[[], object], runs: int) -> tuple[float, object]:
    """Best wall time of ``runs`` calls (the machine may be shared)."""
    times, result = _timed(fn, runs)
    return times[0], result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mb", type=float, default=50.0, help="size of the log in MB (UTF-8)")
    parser.add_argument(
        "--linkify-mb", type=float, default=2.0, help="size of the slice timed with linkify-it-py"
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--pairs", type=int, default=3, help="rounds timing both extractors on the slice"
    )
    parser.add_argument("--save", action="store_true", help="also write bench/out/extract-log.txt")
    args = parser.parse_args(argv)

    text = make_log(int(args.mb * 1e6))
    nbytes = len(text.encode("utf-8"))
    if args.save:
        out = HERE / "out"
        out.mkdir(exist_ok=True)
        (out / "extract-log.txt").write_text(text, encoding="utf-8", newline="")
    print(
        f"log: {nbytes / 1e6:.1f} MB UTF-8, {len(text):,} code points, "
        f"{text.count(chr(10)):,} lines"
    )

    times, links = _timed(lambda: extract(text), args.runs)
    assert isinstance(links, list)
    secs = times[0]
    ours = nbytes / secs / 1e6
    median = nbytes / times[len(times) // 2] / 1e6
    arxiv = sum(1 for link in links if link.kind == "arxiv")
    # The best run is the code's speed; the median and the slowest show how much the
    # machine's own speed moved meanwhile (on a shared VM, by 1.5x or more).
    print(
        f"enrich.extract: {secs:.3f} s (best of {args.runs}), {ours:.0f} MB/s "
        f"(median {median:.0f}, slowest {nbytes / times[-1] / 1e6:.0f}), "
        f"{len(links):,} links ({arxiv:,} arXiv, {len(links) - arxiv:,} GitHub)"
    )
    psecs, pages = _best_of(lambda: find_pages_links(text), args.runs)
    assert isinstance(pages, list)
    print(
        f"enrich.find_pages_links: {psecs:.3f} s, {nbytes / psecs / 1e6:.0f} MB/s, "
        f"{len(pages):,} candidates"
    )

    try:
        from linkify_it import LinkifyIt
    except ImportError:
        print("linkify-it-py not installed: pip install -e .[bench]")
        return 0
    cut = text.rfind("\n", 0, int(args.linkify_mb * 1e6 * len(text) / nbytes))
    piece = text[: cut + 1]
    pbytes = len(piece.encode("utf-8"))
    linkify = LinkifyIt()
    # The VM's speed changes from minute to minute, so the two are compared in pairs:
    # each round times both on the same slice, back to back.
    ratios: list[float] = []
    speeds: list[float] = []
    found: object = None
    for _ in range(args.pairs):
        osecs, _ = _best_of(lambda: extract(piece), 3)
        lsecs, found = _best_of(lambda: linkify.match(piece) or [], 1)
        speeds.append(pbytes / lsecs / 1e6)
        ratios.append(lsecs / osecs)
    assert isinstance(found, list)
    ratios.sort()
    speeds.sort()
    print(
        f"linkify-it-py: {speeds[len(speeds) // 2]:.2f} MB/s median on {pbytes / 1e6:.1f} MB "
        f"({speeds[0]:.2f}-{speeds[-1]:.2f}), {len(found):,} URLs (all kinds)"
    )
    mid = len(ratios) // 2
    print(
        f"ratio: {ratios[mid]:.0f}x median of {len(ratios)} pairs timed back to back on that "
        f"slice ({ratios[0]:.0f}-{ratios[-1]:.0f}x); {ours / speeds[mid]:.0f}x against the "
        "whole-log figure above"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
