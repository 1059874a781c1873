"""camworld.envs.play and viewer: the play window driven headless (SDL dummy driver) by scripted
key events; lockstep of the generated world and its twin; the no-display message.

The learned world is a tiny, untrained checkpoint (32x32 frames) written once per module.
"""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")   # a window without a screen

import argparse
import re
import sys

import numpy as np
import pytest

pygame = pytest.importorskip("pygame")

from camworld.cli import main  # noqa: E402
from camworld.envs import play  # noqa: E402
from camworld.envs.viewer import display_problem, fit  # noqa: E402

GENERATION_TIME = re.compile(r"generation \d+(\.\d)? ms/step")


def parse(*argv) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    play.add_arguments(p)
    return p.parse_args(["--device", "cpu", "--frames-per-step", "2", "--context-size", "4", "--scale", "4",
                         "--headless-steps", "0", *argv])


def keys(*names):
    return [pygame.event.Event(pygame.KEYDOWN, key=play._code(pygame, n)) for n in names]


@pytest.fixture
def game(tiny_checkpoint):
    g = play.make_play(parse("--checkpoint", tiny_checkpoint))
    yield g
    g.close()


def main_panel(g) -> np.ndarray:
    """The lower half of the large panel (the upper-left corner holds its caption)."""
    top, left, h, w = g.window.rects["main"]
    return g.window.snapshot()[top + h // 2:top + h, left:left + w]


def expected_main(g, world) -> np.ndarray:
    _, _, h, w = g.window.rects["main"]
    return fit(g.info[world]["frames"][-1], h, w)[h // 2:]


def test_moves_step_both_worlds_in_lockstep(game):
    before = game.window.snapshot()
    assert "press a key" in "\n".join(game.window.lines)
    assert play.play_loop(game, keys("w", "d", "q")) == 3 and game.steps == 3
    assert not np.array_equal(game.window.snapshot(), before)
    gen, gt = game.info["generated"], game.info["ground truth"]
    np.testing.assert_allclose(gen["pose"], gt["pose"])
    assert not np.allclose(gen["pose"], game.path[0])
    assert gen["memory_size"] == gt["memory_size"] == 1 + 3 * 2
    np.testing.assert_array_equal(gen["retrieved"], gt["retrieved"])     # same strategy, same poses
    assert len(game.path) == 1 + 3 * 2
    assert GENERATION_TIME.search("\n".join(game.window.lines))
    np.testing.assert_array_equal(main_panel(game), expected_main(game, "generated"))


def test_g_switches_the_driving_world_and_keeps_the_camera(game):
    play.play_loop(game, keys("w"))
    pose = game.info["generated"]["pose"].copy()
    play.play_loop(game, keys("g"))
    assert game.driving == "ground truth" and game.steps == 1
    np.testing.assert_allclose(game.info["ground truth"]["pose"], pose)
    assert game.window.lines[0].startswith("GROUND TRUTH")
    np.testing.assert_array_equal(main_panel(game), expected_main(game, "ground truth"))
    play.play_loop(game, keys("a", "g"))
    assert game.driving == "generated" and game.steps == 2
    assert game.info["generated"]["memory_size"] == 1 + 2 * 2               # nothing restarted
    np.testing.assert_allclose(game.info["generated"]["pose"], game.info["ground truth"]["pose"])


def test_t_cycles_every_retrieval_strategy_in_both_worlds(game):
    from camworld.retrieval import STRATEGIES

    names = list(STRATEGIES)
    start = names.index(game.strategy)
    for i in range(1, len(names) + 1):
        play.play_loop(game, keys("t", "w"))
        name = names[(start + i) % len(names)]
        assert game.strategy == name and f"retrieval {name} " in game.window.lines[1]
        gen, twin = (game.envs[w].unwrapped.backend for w in play.WORLDS)
        assert gen.world.retrieval == twin.retrieval == name
    assert game.steps == len(names)


def test_r_resets_and_esc_quits(game):
    play.play_loop(game, keys("w", "w", "r"))
    assert game.steps == 0 and len(game.path) == 1
    assert game.info["generated"]["memory_size"] == game.info["ground truth"]["memory_size"] == 1
    assert play.play_loop(game, keys("escape", "w")) == 0 and game.steps == 0


def test_image_start_has_no_twin(tiny_checkpoint, tmp_path):
    from PIL import Image

    Image.fromarray(np.full((32, 32, 3), 120, np.uint8)).save(tmp_path / "start.png")
    g = play.make_play(parse("--checkpoint", tiny_checkpoint, "--image", str(tmp_path / "start.png")))
    try:
        assert set(g.envs) == {"generated"}
        play.play_loop(g, keys("w", "g", "d"))
        assert g.driving == "generated" and g.steps == 2
        assert "image" in g.message or "image" in g.notes["ground truth"]
    finally:
        g.close()


def test_the_twin_plays_alone_without_a_checkpoint(tmp_path):
    g = play.make_play(parse("--env", "CamWorld-v0", "--checkpoint", str(tmp_path / "missing.safetensors"),
                             "--scale", "2"))
    try:
        assert set(g.envs) == {"ground truth"}
        play.play_loop(g, keys("w", "g"))
        assert g.driving == "ground truth" and "no learned world" in g.message
        assert "ground truth" in g.window.lines[2] and "ms" in g.window.lines[2]
    finally:
        g.close()


def test_cli_headless_steps_writes_a_screenshot(tiny_checkpoint, tmp_path, capsys):
    shot = tmp_path / "play.png"
    rc = main(["play", "--checkpoint", tiny_checkpoint, "--device", "cpu", "--frames-per-step", "2",
               "--context-size", "4", "--headless-steps", str(len(play.SCRIPT)), "--screenshot", str(shot)])
    assert rc == 0 and shot.stat().st_size > 0
    out = capsys.readouterr().out
    assert GENERATION_TIME.search(out) and "step 9" in out                # 12 keys: 9 moves, 2 G, 1 T


def test_without_a_display_it_says_how_to_run(monkeypatch):
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    with pytest.raises(SystemExit) as e:
        main(["play"])
    msg = str(e.value.code)
    assert "no display" in msg and "SDL_VIDEODRIVER=dummy" in msg and "camworld demo" in msg


def test_dummy_driver_without_headless_steps_says_so(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    with pytest.raises(SystemExit, match="--headless-steps"):
        main(["play"])


@pytest.mark.parametrize("environ, platform, ok", [
    ({}, "linux", False),
    ({"DISPLAY": ":0"}, "linux", True),
    ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
    ({"SDL_VIDEODRIVER": "dummy"}, "linux", True),
    ({"SDL_VIDEODRIVER": "offscreen"}, "linux", True),
    ({"SDL_VIDEODRIVER": "x11"}, "linux", False),
    ({"SDL_VIDEODRIVER": "wayland", "DISPLAY": ":0"}, "linux", False),
    ({}, "darwin", True),
    ({}, "win32", True),
])
def test_display_problem(environ, platform, ok):
    assert (display_problem(environ, platform) is None) == ok
