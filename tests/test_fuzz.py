"""The fuzz targets of tests/fuzz/ (README.md there): every seed corpus
is replayed through its target, built by `make test-programs` with
driver.c's main() and the normal compiler (under check-asan: with ASan
and UBSan), so a seed that once found a bug stays a regression test. A
short run of the driver's own mutation loop checks that it stays within
its bounds. `make fuzz` is the real, timed run."""
import subprocess

import pytest

from conftest import BUILD, ROOT

FUZZ_DIR = ROOT / "tests" / "fuzz"
TARGETS = sorted(p.stem for p in FUZZ_DIR.glob("fuzz_*.c"))
TIMEOUT = 120


def binary(name):
    path = (BUILD if BUILD.is_absolute() else ROOT / BUILD) / "fuzz" / name
    assert path.exists(), f"{path} missing: run make test-programs"
    return path


def test_every_target_has_a_seed_corpus():
    assert len(TARGETS) >= 6
    for name in TARGETS:
        corpus = FUZZ_DIR / "corpus" / name[len("fuzz_"):]
        seeds = [p for p in corpus.iterdir() if p.is_file()] if corpus.is_dir() else []
        assert len(seeds) >= 5, f"{name}: too few seeds in {corpus}"


@pytest.mark.parametrize("name", TARGETS)
def test_replay_seed_corpus(name, tmp_path):
    corpus = FUZZ_DIR / "corpus" / name[len("fuzz_"):]
    count = sum(1 for p in corpus.iterdir() if p.is_file())
    res = subprocess.run([str(binary(name)), "-o", str(tmp_path), str(corpus)],
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"ran {count} inputs" in res.stdout
    assert not list(tmp_path.iterdir()), "no crash reproducer may be written"


@pytest.mark.parametrize("name", ["fuzz_ipc", "fuzz_smtp_data"])
def test_mutation_loop_is_bounded(name, tmp_path):
    corpus = FUZZ_DIR / "corpus" / name[len("fuzz_"):]
    res = subprocess.run([str(binary(name)), "-r", "300", "-s", "7", "-m", "512",
                          "-o", str(tmp_path), str(corpus)],
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "(300 mutated)" in res.stdout


def test_unreadable_input_fails_the_replay(tmp_path):
    good = tmp_path / "in"
    good.write_bytes(b"\x01\x80\x00\x00line\r\n.\r\n")
    res = subprocess.run([str(binary("fuzz_smtp_data")), "-o", str(tmp_path), str(good),
                          str(tmp_path / "missing")],
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert res.returncode == 1, "a file that cannot be read fails the replay"
    assert "ran 1 inputs" in res.stdout
