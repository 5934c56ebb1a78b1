"""The cached base image is built once even when two labs (two slots) come up at the same moment."""

import threading

from pbox.lab import image


def test_two_labs_at_once_build_the_base_image_once(tmp_path, monkeypatch):
    monkeypatch.setattr(image, "codename", lambda: "bookworm")
    monkeypatch.setattr(image, "debian_sources", lambda release: [])
    builds: list[str] = []
    release = threading.Event()

    def fake_build(target, release_name, sources, progress) -> None:
        builds.append(threading.current_thread().name)
        release.wait(30)  # the first build is still running when the second lab asks
        (target / "rootfs").mkdir(parents=True)
        (target / ".complete").write_text("bookworm\n")

    monkeypatch.setattr(image, "_build", fake_build)
    roots: list = []
    first = threading.Thread(target=lambda: roots.append(image.ensure_base_image(cache=tmp_path)), name="a")
    second = threading.Thread(target=lambda: roots.append(image.ensure_base_image(cache=tmp_path)), name="b")
    first.start()
    second.start()
    second.join(timeout=1)  # without the lock, b would be inside its own build by now
    release.set()
    first.join()
    second.join()
    assert len(builds) == 1
    assert len(roots) == 2 and roots[0] == roots[1] and roots[0].is_dir()
