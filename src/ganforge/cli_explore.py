"""`ganforge mix | interpolate | project | direction | edit | classes | truncation`: exploring a run from the
command line (StyleGAN's W space; the classes and truncation of conditional models such as BigGAN).

Part of the command line (cli.py builds the parser and reports errors): these functions parse and
check arguments, call `ganforge.tools`, and print. Every check on user input runs before any image is
generated; a failed one is a GanforgeError, which cli.py prints as one line with exit code 2.
"""
from __future__ import annotations

from pathlib import Path

from .cli import _bounded_int, _err, count_int, positive_int, seed_int
from .errors import GanforgeError


def _style_run(args, what: str):
    """Load the run of a StyleGAN-only command and check that it is one."""
    from .pretrained import load
    from .tools.style import require_style

    g = load(args.path, ema=not args.no_ema, device=args.device or "cpu")
    require_style(g, what)
    if getattr(args, "cls", None) is not None:
        g.io.check_labels(args.cls)
    return g


def cmd_mix(args) -> int:
    from .tools.style import check_psi, describe_levels, parse_seeds, style_layers, style_mix_grid
    from .utils.images import save_grid

    rows, cols = parse_seeds(args.rows), parse_seeds(args.cols)
    psi = check_psi(args.trunc)
    g = _style_run(args, "style mixing (`ganforge mix`)")
    layers = style_layers(g, args.levels)
    lod = float(getattr(g.net, "current_lod", 0.0))  # a progressive (v1) run part-way through growing
    if lod > 0:
        from .tools.style import layer_resolution

        top = g.io.image_size >> int(lod)
        idle = [i for i in layers if layer_resolution(i) > (2 * top if lod % 1 else top)]
        if idle:
            _err(f"ganforge: note: this progressive run works at {top} px so far (lod {lod:g}): "
                 f"layers {idle[0]}-{idle[-1]} do not change its images yet")
    grid = style_mix_grid(g, rows, cols, layers, psi=psi, class_label=args.cls)
    out = save_grid(grid, args.out, nrow=len(cols) + 1)
    print(f"wrote a {len(rows)}x{len(cols)} style-mixing grid to {out}: layers {layers[0]}-{layers[-1]} from the "
          f"column seeds (top row) into the row seeds (left column); {describe_levels(g)}")
    return 0


def _parse_classes(text: str) -> list[int]:
    """Class indices from "3,8" or "0-9" (the seed syntax)."""
    from .tools.style import parse_seeds

    try:
        return parse_seeds(text)
    except GanforgeError:
        raise GanforgeError(f"bad classes {text!r}: use lists and ranges of class indices like 3,8 or 0-9") from None


def _threshold(value) -> float | None:
    from .models.interface import check_threshold

    return None if value is None else check_threshold(value)


def _noise_run(args):
    from .pretrained import load

    g = load(args.path, ema=not args.no_ema, device=args.device or "cpu")
    if g.task != "noise":
        g.sample(1)  # one clear line: this model translates or upscales
    return g


def cmd_classes(args) -> int:
    from .tools.conditional import class_sheet, require_classes
    from .utils.images import save_grid

    classes = None if args.classes is None else _parse_classes(args.classes)
    threshold = _threshold(args.trunc)
    g = _noise_run(args)
    k = require_classes(g, "a class sheet (`ganforge classes`)")
    sheet = class_sheet(g, classes, per_class=args.per_class, seed=args.seed, threshold=threshold)
    out = save_grid(sheet, args.out, nrow=args.per_class)
    rows = len(classes) if classes is not None else k
    print(f"wrote a class sheet to {out}: {rows} rows (one per class), {args.per_class} seeds from {args.seed}"
          + (f", z truncated at {threshold:g}" if threshold is not None else ""))
    return 0


def cmd_truncation(args) -> int:
    from .utils.images import save_grid
    from .tools.conditional import truncation_sweep

    values = []
    for part in str(args.values).split(","):
        part = part.strip().lower()
        values.append(None if part in ("none", "off") else _threshold(part))
    g = _noise_run(args)
    if args.cls is not None:
        g.io.check_labels(args.cls)
    sheet = truncation_sweep(g, values, n=args.n, seed=args.seed, label=args.cls)
    out = save_grid(sheet, args.out, nrow=args.n)
    names = ", ".join("none" if v is None else f"{v:g}" for v in values)
    print(f"wrote a truncation sweep to {out}: one row per threshold ({names}), {args.n} seeds from {args.seed}")
    return 0


def _class_walk(args) -> int:
    from .tools.conditional import class_walk
    from .tools.style import parse_seeds
    from .utils.images import save_grid

    pair = _parse_classes(args.classes)
    if len(pair) != 2:
        raise GanforgeError(f"--classes takes two classes to walk between, e.g. 3,8; got {args.classes!r}")
    seeds = parse_seeds(args.seeds)
    if Path(args.out).suffix.lower() not in (".png", ".gif", ".mp4"):
        raise GanforgeError(f"--out must end in .png (a sheet: one row per seed), .gif or .mp4, got {args.out!r}")
    threshold = _threshold(args.trunc_z)
    if Path(args.out).suffix.lower() != ".png":
        from .tools.animation import check_animation_path, check_size

        check_animation_path(args.out)
        check_size(args.size)
    g = _noise_run(args)
    walk = class_walk(g, pair[0], pair[1], seeds, steps=args.frames, threshold=threshold)
    if Path(args.out).suffix.lower() == ".png":
        out = save_grid(walk.flatten(0, 1), args.out, nrow=args.frames)
        what = f"a {len(seeds)}x{args.frames} sheet (one row per seed)"
    else:
        import torch

        from .tools.animation import write_animation
        from .utils.images import make_grid

        frames = torch.stack([make_grid(walk[:, f], nrow=len(seeds)) for f in range(args.frames)])
        out = write_animation(frames, args.out, fps=args.fps, size=args.size)
        what = f"{args.frames} frames"
    print(f"wrote {what} walking the class embedding from class {pair[0]} to {pair[1]} to {out}")
    return 0


def cmd_interpolate(args) -> int:
    from .pretrained import load
    from .tools.animation import check_animation_path, check_size, write_animation
    from .tools.interpolation import interpolate
    from .tools.style import check_psi, parse_seeds, require_style

    if args.classes is not None:
        if args.cls is not None or args.space != "z" or args.trunc != 1.0:
            raise GanforgeError("--classes walks between two classes at fixed seeds: it takes no --class, "
                                "--space or --trunc (use --trunc-z for BigGAN's truncation)")
        return _class_walk(args)
    if args.trunc_z is not None:
        raise GanforgeError("--trunc-z applies to class walks (--classes); seed walks take --trunc")
    seeds = parse_seeds(args.seeds)
    if len(seeds) < 2:
        raise GanforgeError(f"--seeds needs at least 2 seeds to walk between, got {len(seeds)}")
    psi = check_psi(args.trunc)
    check_animation_path(args.out)
    check_size(args.size)
    g = load(args.path, ema=not args.no_ema, device=args.device or "cpu")
    if g.task != "noise":
        raise GanforgeError(f"{g.path} holds an image-to-image model; `interpolate` needs a noise model")
    if args.space == "w":
        require_style(g, "interpolation in W (--space w)")
    if psi != 1.0:
        require_style(g, "--trunc")
    frames = interpolate(g, seeds, space=args.space, frames=args.frames, loop=args.loop, psi=psi,
                         class_label=args.cls)
    out = write_animation(frames, args.out, fps=args.fps, size=args.size)
    how = "slerp in Z" if args.space == "z" else "lerp in W"
    print(f"wrote {frames.shape[0]} frames ({how}, {args.frames} per segment) to {out}")
    return 0


def cmd_project(args) -> int:
    from .tools.animation import check_size
    from .tools.projection import load_target, project, save_projection

    if not Path(args.image).is_file():
        raise GanforgeError(f"no such image file: {args.image}")
    check_size(args.size)
    g = _style_run(args, "projection (`ganforge project`)")
    target, notes = load_target(args.image, g.io.out_channels, g.io.image_size)
    for note in notes:
        _err(f"ganforge: note: {args.image}: {note}")
    res = project(g, target, space=args.space, steps=args.steps, seed=args.seed, class_label=args.cls,
                  echo=lambda line: _err(f"  {line}"))
    paths = save_projection(res, args.out, size=args.size)
    print(f"reconstruction MSE {res.mse:.5f} (PSNR {res.psnr:.2f} dB); mean-w start MSE {res.baseline_mse:.5f} "
          f"(PSNR {res.baseline_psnr:.2f} dB)")
    print(f"wrote {', '.join(p.name for p in paths.values())} to {args.out}")
    return 0


def cmd_direction(args) -> int:
    from .tools.directions import check_name, learn_direction, load_score_function, read_labels, save_direction

    name = check_name(args.name)
    labels = read_labels(args.labels) if args.labels is not None else None
    if labels is not None and args.samples is not None:
        raise GanforgeError("--samples applies to --score; with --labels the samples are the file's seeds")
    score = load_score_function(args.score) if args.score is not None else None
    g = _style_run(args, "learning a direction (`ganforge direction`)")
    d = learn_direction(g, score, n=args.samples or 1000, labels=labels, seed=args.seed, class_label=args.cls,
                        source=f"score:{args.score}" if score else f"labels:{args.labels}")
    path = save_direction(g, d, name)
    print(f"direction {name!r}: {d.describe()}")
    print(f"wrote {path}")
    return 0


def cmd_edit(args) -> int:
    from .tools.directions import check_name, edit, load_direction, parse_strengths
    from .tools.projection import load_latent
    from .tools.style import as_ws, check_psi, seed_ws
    from .utils.images import save_grid

    strengths = parse_strengths(args.strengths)
    name = check_name(args.direction)
    psi = check_psi(args.trunc)
    latent, noise = load_latent(args.latent) if args.latent is not None else (None, {})
    if latent is not None and args.trunc != 1.0:
        raise GanforgeError("--trunc applies to --seed; a --latent is used as it is")
    g = _style_run(args, "editing (`ganforge edit`)")
    d = load_direction(g, name)
    if latent is not None:
        ws = as_ws(g, latent)
        if ws.shape[0] != 1:
            raise GanforgeError(f"{args.latent} holds {ws.shape[0]} latents; edit takes one")
    else:
        ws = seed_ws(g, [args.seed], psi=psi, labels=args.cls if args.cls is not None else
                     (0 if g.io.num_classes else None))
    imgs = edit(g, ws, d, strengths, noise=noise)
    out = save_grid(imgs, args.out, nrow=len(strengths))
    print(f"wrote {len(strengths)} edits along {name!r} (strengths {', '.join(f'{v:g}' for v in strengths)} "
          f"x std {d.std:.4g}) to {out}")
    return 0


def _run_args(p, cls: bool = True) -> None:
    """Arguments every exploration command takes: the run, EMA, device (and the class)."""
    p.add_argument("path", help="run folder or checkpoint folder of a StyleGAN run")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator, not its EMA")
    p.add_argument("--device", default=None)
    if cls:
        p.add_argument("--class", dest="cls", type=count_int, default=None,
                       help="class of a conditional model (default 0)")


def add_explore_commands(sub) -> None:
    """mix, interpolate, project, direction and edit: exploring a StyleGAN run."""
    psi = dict(type=float, default=1.0, metavar="PSI", help="truncation psi in [0, 2] towards the tracked mean w")
    mx = sub.add_parser("mix", help="style-mixing grid of a StyleGAN run",
                        description="Top row: the column seeds' images; left column: the row seeds'; each cell: "
                        "the row seed's styles with the chosen layers taken from the column seed.")
    _run_args(mx)
    mx.add_argument("--rows", required=True, help="row seeds, e.g. 0-5 or 1,5,9")
    mx.add_argument("--cols", required=True, help="column seeds")
    mx.add_argument("--levels", default="coarse", help="coarse, middle, fine (by resolution; the command prints "
                    "the layers) or a layer range A-B")
    mx.add_argument("--out", default="mix.png", help="output image")
    mx.add_argument("--trunc", **psi)
    mx.set_defaults(func=cmd_mix)

    it = sub.add_parser("interpolate", help="animated walk through seeds (GIF or MP4), or between two classes",
                        description="Slerp in Z or lerp in W through the seeds in order; N frames per segment. "
                        "With --classes A,B (BigGAN): each seed's z held fixed while the shared class embedding "
                        "moves from class A's to class B's; a .png out is a sheet with one row per seed.")
    _run_args(it)
    it.add_argument("--seeds", required=True, help="seeds to pass through, in order, e.g. 1,2,3 (with --classes: "
                    "the seeds of the rows)")
    it.add_argument("--classes", default=None, help="two classes A,B: walk the class embedding (BigGAN)")
    it.add_argument("--trunc-z", type=float, default=None, metavar="T",
                    help="with --classes: z entries beyond +-T redrawn (BigGAN's truncation)")
    it.add_argument("--space", choices=("z", "w"), default="z", help="z (any noise model) or w (StyleGAN)")
    it.add_argument("--frames", type=_bounded_int(2), default=30, help="frames per segment (>= 2)")
    it.add_argument("--loop", action="store_true", help="walk back to the first seed")
    it.add_argument("--out", default="walk.gif", help=".gif, or .mp4 when ffmpeg is available")
    it.add_argument("--size", type=positive_int, default=None, help="frame height in pixels (e.g. 256 for a "
                    "32 px model; nearest-neighbour when enlarging)")
    it.add_argument("--fps", type=float, default=20.0)
    it.add_argument("--trunc", **psi)
    it.set_defaults(func=cmd_interpolate)

    cs = sub.add_parser("classes", help="class sheet of a conditional model: one row per class",
                        description="Row i: class i (or the i-th of --classes); column j: seed SEED + j, the "
                        "same z in every row.")
    _run_args(cs, cls=False)
    cs.add_argument("--classes", default=None, help="classes to show, e.g. 0-9 or 1,7 (default: all)")
    cs.add_argument("--per-class", type=_bounded_int(1, 256), default=8, help="seeds per class (default 8)")
    cs.add_argument("--seed", type=seed_int, default=0, help="first seed")
    cs.add_argument("--trunc", type=float, default=None, metavar="T",
                    help="z entries beyond +-T redrawn (BigGAN's truncation, >= 0.04)")
    cs.add_argument("--out", default="classes.png", help="output image")
    cs.set_defaults(func=cmd_classes)

    tr = sub.add_parser("truncation", help="truncation sweep: one row per threshold",
                        description="Row i: z with entries beyond +-T_i redrawn (BigGAN's truncation trick; "
                        "'none' for no truncation); column j: seed SEED + j. Lower thresholds trade variety for "
                        "typical samples.")
    _run_args(tr)
    tr.add_argument("--values", default="none,2,1,0.5,0.25", help="thresholds, e.g. none,2,1,0.5,0.25")
    tr.add_argument("-n", type=_bounded_int(1, 256), default=8, help="seeds per row (default 8)")
    tr.add_argument("--seed", type=seed_int, default=0, help="first seed")
    tr.add_argument("--out", default="truncation.png", help="output image")
    tr.set_defaults(func=cmd_truncation)

    pj = sub.add_parser("project", help="find the latent of a real image (StyleGAN)",
                        description="Optimise w (or per-layer w+) and the noise maps to reconstruct IMAGE, as "
                        "stylegan2-ada's projector but with a multi-scale pixel MSE in place of LPIPS.")
    _run_args(pj)
    pj.add_argument("image", help="image file (converted to the model's channels and size, with a note)")
    pj.add_argument("--space", choices=("w", "w+"), default="w")
    pj.add_argument("--steps", type=positive_int, default=1000)
    pj.add_argument("--out", required=True, help="output folder: latent.pt, target.png, reconstruction.png, "
                    "progress.gif, metrics.json")
    pj.add_argument("--seed", type=seed_int, default=0, help="seed of the initial noise maps and w noise")
    pj.add_argument("--size", type=positive_int, default=None, help="height of progress.gif frames in pixels")
    pj.set_defaults(func=cmd_project)

    dr = sub.add_parser("direction", help="learn a linear direction in W (InterFaceGAN)",
                        description="Sample seeded w's, score their images (or read seed,label lines) and fit a "
                        "linear model; saves RUN/directions/NAME.pt.")
    _run_args(dr)
    dr.add_argument("--name", required=True, help="direction name (file RUN/directions/NAME.pt)")
    src = dr.add_mutually_exclusive_group(required=True)
    src.add_argument("--labels", default=None, help="CSV of seed,label lines (numeric labels; two values: "
                     "a linear SVM, otherwise regression)")
    src.add_argument("--score", default=None, help="MODULE:FUNCTION (module name or file.py), called as "
                     "FUNCTION(images [N,C,H,W] in [-1, 1]) -> scores [N]")
    dr.add_argument("--samples", type=_bounded_int(10), default=None, help="samples to score (default 1000)")
    dr.add_argument("--seed", type=seed_int, default=0, help="first seed of the samples (and of the split)")
    dr.set_defaults(func=cmd_direction)

    ed = sub.add_parser("edit", help="move a latent along a learnt direction",
                        description="One row of images, one per strength, in standard deviations of W along "
                        "the direction.")
    _run_args(ed)
    which = ed.add_mutually_exclusive_group(required=True)
    which.add_argument("--seed", type=seed_int, default=None, help="edit this seed's w")
    which.add_argument("--latent", default=None, help="edit a latent.pt written by `ganforge project`")
    ed.add_argument("--direction", required=True, help="name of a direction learnt with `ganforge direction`")
    ed.add_argument("--strengths", default="-3:3:7", help="start:stop:count (or a list a,b,c); "
                    "a leading minus needs no '=': --strengths -3:3:7")
    ed.add_argument("--out", default="edit.png", help="output image")
    ed.add_argument("--trunc", **psi)
    ed.set_defaults(func=cmd_edit)
