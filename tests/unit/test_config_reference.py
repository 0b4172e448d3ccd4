"""docs/configuration.md lists every property and option emrfs accepts (it is generated)."""

from __future__ import annotations

from emrfs import config, config_reference, hadoop_compat


def test_the_reference_in_docs_is_current():
    text = config_reference.DOC.read_text()
    assert config_reference.rewrite(text) == text, (
        "docs/configuration.md is stale: run python -m emrfs.config_reference"
    )


def test_the_doc_names_every_name_the_code_accepts():
    text = config_reference.DOC.read_text()
    names = {
        *config.ALIASES,
        *(p.name for p in hadoop_compat.PROPERTIES),
        *config.IGNORED_PROPERTIES,
        *(s.env for s in config.REGISTRY.values()),
    }
    missing = sorted(n for n in names if f"`{n}`" not in text)
    assert not missing, missing


def test_check_mode_reports_a_stale_doc(tmp_path):
    stale = tmp_path / "configuration.md"
    stale.write_text(f"intro\n{config_reference.BEGIN}\nold table\n{config_reference.END}\n")
    assert config_reference.main(["--check", str(stale)]) == 1
    assert config_reference.main([str(stale)]) == 0
    assert config_reference.main(["--check", str(stale)]) == 0
    assert "`s3.max_concurrency`" in stale.read_text() and stale.read_text().startswith("intro")
