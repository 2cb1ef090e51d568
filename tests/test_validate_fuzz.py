"""Whatever the file holds, `bria-run validate` ends with exit 0 or 2 and a message, never a
traceback: arbitrary YAML documents, arbitrary text, and mutations of luna.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from runner.cli import main

LUNA = (Path(__file__).resolve().parent.parent / "pipelines" / "luna.yaml").read_text()
FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

KEYS = st.sampled_from(["version", "name", "character", "images", "scenes", "prompt", "seed",
                        "training", "identity", "reference", "guidance", "variations", "x"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                    st.floats(allow_nan=True), st.text(max_size=20))
DOCS = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(KEYS, st.text(max_size=8)), inner,
                                                 max_size=5)), max_leaves=25)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """luna.yaml's folder layout with small images, so each validation stays quick."""
    root = tmp_path_factory.mktemp("fuzz")
    for sub, names in (("training", [f"{i}" for i in range(6)]),
                       ("scenes", ["forest", "beach", "castle"])):
        (root / "luna" / sub).mkdir(parents=True)
        for i, name in enumerate(names):
            Image.new("RGB", (260, 260), (i * 40, 9, 99)).save(root / "luna" / sub / f"{name}.png")
    return root


def check(path: Path, text: str | bytes) -> None:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exc_info)
    assert result.exit_code in (0, 2)
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert output.strip()
    if result.exit_code == 2:
        assert all(line.startswith(f"{path}:") for line in result.stderr.splitlines())


@FAST
@given(DOCS)
def test_arbitrary_yaml_documents(project: Path, doc: object) -> None:
    check(project / "doc.yaml", yaml.safe_dump(doc, allow_unicode=True))


@FAST
@given(st.binary(max_size=200))
def test_arbitrary_bytes(project: Path, raw: bytes) -> None:
    check(project / "raw.yaml", raw)


@st.composite
def mutations(draw: st.DrawFn) -> str:
    lines = LUNA.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["drop", "dup", "char", "cut", "swap", "value"]))
        if op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "char":
            at = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + draw(st.sampled_from(list(":-[]{}&*!|>'\"# \t%@`x9"))) \
                + lines[i][at:]
        elif op == "cut":
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif ":" in lines[i]:
            key = lines[i].split(":", 1)[0]
            lines[i] = f"{key}: {draw(st.sampled_from(['-1', '1.5', '99', 'true', '[]', '{}', '~', 'x', '*a', '&a 1']))}"
        if not lines:
            break
    return "\n".join(lines) + "\n"


@FAST
@given(mutations())
def test_mutations_of_luna(project: Path, text: str) -> None:
    check(project / "luna.yaml", text)
