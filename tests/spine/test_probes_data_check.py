"""`ganforge data check` exits 1 when it finds problems, so scripts and CI can rely on it."""
import io

from PIL import Image

from ganforge.cli import main


def _png(size=(8, 8)) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise(size, 40).save(buf, format="PNG")
    return buf.getvalue()


def test_exit_codes(tmp_path, capsys):
    good, mixed, broken = tmp_path / "good", tmp_path / "mixed", tmp_path / "broken"
    for d in (good, mixed, broken):
        d.mkdir()
    (good / "a.png").write_bytes(_png())
    (good / "b.png").write_bytes(_png())
    (mixed / "a.png").write_bytes(_png())
    (mixed / "cut.png").write_bytes(_png((64, 64))[:200])
    (broken / "cut.png").write_bytes(_png((64, 64))[:200])  # nothing readable at all

    assert main(["data", "check", str(good)]) == 0
    assert "result:   OK" in capsys.readouterr().out
    assert main(["data", "check", str(mixed)]) == 1
    out = capsys.readouterr().out
    assert "1 readable, 1 corrupt" in out and "PROBLEMS FOUND" in out
    assert main(["data", "check", str(broken)]) == 1
    assert "0 readable, 1 corrupt" in capsys.readouterr().out


def test_help_documents_exit_codes(capsys):
    assert main(["data", "check", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Exit code 0: all is well; 1: corrupt files were found or nothing is readable" in out
