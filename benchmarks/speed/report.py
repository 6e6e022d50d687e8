"""The "## How fast is it, against what?" section: a header, then each section's own table."""

from __future__ import annotations

from . import cache, knn, quality, serve, train

__all__ = ["HEADING", "SECTIONS", "render"]

HEADING = "## How fast is it, against what?"

# In the order they run by default and appear in RESULTS.md.
SECTIONS = {"train": train, "quality": quality, "serve": serve, "knn": knn, "cache": cache}


def render(out, flags, device):
    """The whole section for a run's results ``out`` (as saved to the JSON).

    Args:
        out: ``machine``, ``versions``, ``wall_s``, the result of each section that ran
            under its name, and ``errors`` {section: message} for those that failed.
        flags: The command's options as written in the section (e.g. ``" --quick"``).
        device: Where the run measured (written as is).

    Returns:
        The markdown text, starting with :data:`HEADING`.
    """
    lines = [
        HEADING,
        "",
        f"Command: `flock /tmp/deepsmote-cpu.lock python -m benchmarks.bench_speed{flags}` "
        f"({out['wall_s']:.0f} s). Machine: {out['machine']}. "
        f"Versions: {out['versions']}. Device: {device}. Every ratio compares two things timed "
        "in the same run, interleaved, median of the repetitions; the machine's 2 cores may be "
        "shared, so absolute figures vary between runs more than the ratios.",
        "",
    ]
    for name, section in SECTIONS.items():
        if name in out:
            lines += section.render(out[name])
    for name, error in out.get("errors", {}).items():
        lines.append(f"Section `{name}` failed in this run: `{error}`.\n")
    return "\n".join(lines)
