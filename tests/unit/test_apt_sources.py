"""The lab reads the controller's mirror from its apt configuration, whatever the format."""

import pytest

from pbox.lab.apt_sources import debian_sources, main_mirror


@pytest.fixture
def apt(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    return tmp_path


def test_deb822_and_one_line_sources(apt):
    (apt / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\n"
        "Components: main contrib\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb deb-src\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
        "Components: main\n")
    (apt / "sources.list.d" / "node.list").write_text(
        "deb [signed-by=/x.gpg] https://node.example/ nodistro main\n")
    (apt / "sources.list").write_text(
        "# a comment\ndeb http://other.example/debian bookworm-backports main\n")
    got = debian_sources(apt, "bookworm")
    assert [(s.uri, s.suites) for s in got] == [
        ("http://other.example/debian", ("bookworm-backports",)),
        ("http://mirror.example/debian", ("bookworm", "bookworm-updates")),
        ("http://mirror.example/debian-security", ("bookworm-security",)),
    ]
    assert main_mirror(got, "bookworm").uri == "http://mirror.example/debian"
    assert "Suites: bookworm bookworm-updates" in got[1].deb822()


def test_disabled_and_foreign_release_sources_are_ignored(apt):
    (apt / "sources.list.d" / "a.sources").write_text(
        "Types: deb\nURIs: http://x/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n")
    (apt / "sources.list").write_text("deb http://y/debian trixie main\n")
    with pytest.raises(RuntimeError, match="no Debian 'bookworm' source"):
        debian_sources(apt, "bookworm")
