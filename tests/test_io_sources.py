import zipfile

import pytest

from srg import io, sources


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "out.jsonl"
    io.write_jsonl(target, [{"a": 1}])

    def rows():
        yield {"a": 2}
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        io.write_jsonl(target, rows())
    assert io.read_jsonl(target) == [{"a": 1}]  # old content intact
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]  # no temp left behind


def test_malformed_jsonl_names_file_and_line(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"a": 1}\n{oops\n')
    with pytest.raises(ValueError, match=r"x.jsonl:2: malformed JSON"):
        io.read_jsonl(p)


def _fake_sources(tmp_path, sha):
    wheel = tmp_path / "wheels" / "demo-1.0-py3-none-any.whl"
    wheel.parent.mkdir(parents=True)
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("demo/data/a.txt", "hello")
        zf.writestr("demo/data/sub/b.txt", "world")
    spec = {
        "wheels": {"demo": {"version": "1.0", "filename": wheel.name, "sha256": sha or sources.sha256_of(wheel)}},
        "files": {
            "a": {"wheel": "demo", "path": "demo/data/a.txt"},
            "folder": {"wheel": "demo", "path": "demo/data/"},
            "missing": {"wheel": "demo", "path": "demo/nope.txt"},
        },
        "models": {},
    }
    return wheel, spec


def test_read_from_wheel(tmp_path):
    _, spec = _fake_sources(tmp_path, None)
    assert sources.read_text("a", tmp_path, spec) == "hello"
    assert sources.list_folder("folder", tmp_path, spec) == {"a.txt": b"hello", "sub/b.txt": b"world"}
    with pytest.raises(sources.SourceError, match="demo/nope.txt not found inside wheel demo"):
        sources.read_text("missing", tmp_path, spec)
    with pytest.raises(sources.SourceError, match="unknown source file 'zzz'"):
        sources.read_text("zzz", tmp_path, spec)


def test_sha_mismatch_names_file_and_hashes(tmp_path):
    wheel, spec = _fake_sources(tmp_path, "0" * 64)
    with pytest.raises(sources.SourceError) as exc:
        sources.fetch_wheel("demo", tmp_path, spec)
    msg = str(exc.value)
    assert str(wheel) in msg and "expected " + "0" * 64 in msg and sources.sha256_of(wheel) in msg


def test_missing_wheel_points_to_fetch_step(tmp_path):
    spec = {"wheels": {"demo": {"version": "1", "filename": "demo.whl", "sha256": "x"}}, "files": {}, "models": {}}
    with pytest.raises(sources.SourceError, match="run the DAG's fetch step"):
        sources.wheel_path("demo", tmp_path, spec)


def test_pinned_wheels_verify(resources):
    for name in sources.load_sources()["wheels"]:
        sources.verify(sources.wheel_path(name, resources), sources.wheel_spec(name).sha256)
