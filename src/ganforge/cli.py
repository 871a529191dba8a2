"""The `ganforge` command: parse arguments, call the Python API, print, exit codes.

Exit codes: 0 ok, 1 problems found (`data check`), 2 user error (one line, no traceback), 3 training
diverged, 4 another process of a multi-process run died or hung, 130 interrupted.

Only the standard library is imported at module level: torch takes seconds to import, and an error or a
Ctrl-C during that time must still end in one line rather than a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import GanforgeError, TrainingDiverged
from .utils.paths import weights_dir


def _rank() -> int:
    """This process's rank under torchrun (0 otherwise)."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def _err(*a, **k):
    print(*a, file=sys.stderr, **k)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, `ganforge: error: ...`, and exit code 2."""

    def error(self, message: str):
        _err("ganforge: error: " + " ".join(message.split()))  # one line, whatever argparse composed
        sys.exit(2)


def _bounded_int(least: int, upper: int | None = None):
    """An argparse `type=`: an integer >= least (and < upper)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < least or (upper is not None and value >= upper):
            bound = f">= {least}" if upper is None else f"in [{least}, {'2**63' if upper == 2**63 else upper})"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    parse.__name__ = f"int>={least}"
    return parse


positive_int = _bounded_int(1)
count_int = _bounded_int(0)
seed_int = _bounded_int(0, 2**63)


def cmd_train(args) -> int:
    from .api import discard_reserved, plan_run
    from .training.loop import Interrupted, Trainer

    if args.target and "=" in args.target:  # `train --resume RUN key=value`: no target given
        args.overrides.insert(0, args.target)
        args.target = None
    resume = True if args.resume == "" else args.resume
    cfg, run_dir, ckpt = plan_run(args.target, args.data, args.overrides, args.name, resume,
                                  reserve=not args.dry_run)
    if args.device:
        cfg.train.device = args.device
    if args.dry_run:
        print(cfg.to_yaml(), end="")
        return 0
    try:
        trainer = Trainer(cfg, run_dir, resume=ckpt, echo=print)
    except BaseException:
        discard_reserved(run_dir)
        raise
    say = _err if trainer.main else (lambda *a, **k: None)  # under torchrun only rank 0 talks
    say(f"ganforge: training {cfg.model['name']} ({cfg.preset or 'no preset'}) on {trainer.dataset.describe()} "
         f"-> {run_dir}" + (f", resuming from {ckpt}" if ckpt else ""))
    try:
        out = trainer.run()
    except Interrupted as e:
        say(f"ganforge: {e}; continue with: ganforge train --resume {run_dir}")
        return 130
    if trainer.main:
        print(f"done: {out}  (samples in {out / 'samples'}, losses in {out / 'losses.png'})")
    return 0


def cmd_sample(args) -> int:
    from .pretrained import load

    from .models.interface import check_threshold
    from .tools.style import check_psi, is_style

    seeds = psi = threshold = None
    if args.seeds is not None:
        from .tools.style import parse_seeds

        if args.n is not None or args.seed is not None:
            raise GanforgeError("give --seeds, or -n and --seed, not both")
        seeds = parse_seeds(args.seeds)
    if args.trunc is not None and not 0 <= args.trunc < float("inf"):  # the run decides which meaning applies
        raise GanforgeError(f"--trunc must be a finite number >= 0, got {args.trunc}")
    g = load(args.path, ema=not args.no_ema, device=args.device or "cpu")
    if g.task != "noise":
        g.sample(1)  # one clear line: this model translates or upscales
    if args.cls is not None:
        g.io.check_labels(args.cls)
    if args.trunc is not None:
        if is_style(g):
            psi = check_psi(args.trunc)
        else:
            threshold = check_threshold(args.trunc)
    ema = " (EMA weights)" if g.ema else ""
    how = ema + (f", truncation psi {psi:g}" if psi is not None else "") + \
        (f", z truncated at {threshold:g} (resampled)" if threshold is not None else "") + \
        (f", class {args.cls}" if args.cls is not None else "")
    if seeds is None:
        n = 64 if args.n is None else args.n
        out = g.save_grid(args.out, n=n, seed=args.seed or 0, labels=args.cls, nrow=args.nrow, psi=psi or 1.0,
                          threshold=threshold)
        print(f"wrote {n} samples to {out}" + how)
        return 0
    from .tools.style import seed_images
    from .utils.images import save_grid

    imgs = seed_images(g, seeds, psi=1.0 if psi is None else psi, labels=args.cls, threshold=threshold)
    out = save_grid(imgs, args.out, nrow=args.nrow or 8)
    print(f"wrote {len(seeds)} samples (one per seed) to {out}" + how)
    return 0


def cmd_models(args) -> int:
    import torch

    from .config import list_presets, load_preset
    from .losses import ADVERSARIAL_LOSSES
    from .models.base import count_parameters
    from .registry import create_model, model_factory, model_names, recipe_names

    print("models:")
    for name in model_names():
        line = f"  {name}"
        if args.params:
            m = create_model(name)
            line += "  " + ", ".join(f"{k}={count_parameters(v):,}" for k, v in m.nets.items())
            line += "  (" + ", ".join(f"{k}={v}" for k, v in m.args.items() if k in ("image_size", "channels")) + ")"
        print(line)
        for config in getattr(model_factory(name), "configs", {}) if args.params else ():
            with torch.device("meta"):  # counts only: no memory or init time for the 1024 px networks
                mc = create_model(name, config=config)
            print(f"    config={config}: " + ", ".join(f"{k}={count_parameters(v):,}" for k, v in mc.nets.items())
                  + f"  (image_size={mc.args.get('image_size')})")
    print("recipes:\n" + "\n".join(f"  {r}" for r in recipe_names()))
    print("presets (ganforge train PRESET):")
    for p in list_presets():
        raw = load_preset(p)
        print(f"  {p:<12} {raw.get('description', '')}")
    print("losses:\n" + "\n".join(f"  {k:<12} {v}" for k, v in ADVERSARIAL_LOSSES.items()))
    return 0


def cmd_summary(args) -> int:

    from .config import config_for
    from .tools.summary import summarize
    from .registry import create_model

    cfg = config_for(args.target, args.overrides)
    margs = {k: v for k, v in cfg.model.items() if k != "name"}
    m = create_model(cfg.model["name"], **margs)
    for key, net in m.nets.items():
        print(summarize(net, _example_inputs(m, key), title=f"{m.name}.{key} ({type(net).__name__})"))
    return 0


def _example_inputs(m, key):
    import torch

    net = m.nets[key]
    a = m.args
    k = a.get("num_classes", 0) or a.get("clusters", 0) or 0  # a self-conditioned D takes its clusters
    y = (torch.arange(2) % k,) if k else ()
    if m.task == "noise" and hasattr(net, "z_dim"):
        return (torch.randn(2, net.z_dim), *y)
    if m.task == "noise":
        return (torch.zeros(2, a["channels"], a["image_size"], a["image_size"]), *y)
    ch = getattr(net, "in_channels", None) or _first_conv_channels(net)
    s = a.get("image_size", 64)
    if m.task == "upscale":  # G takes the LR tile, D the HR crop
        s = a["hr_size"] if key == "D" else m.io.image_size
    return (torch.zeros(1, ch, s, s),)


def _first_conv_channels(net) -> int:
    from torch import nn

    for mod in net.modules():
        if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
            return mod.in_channels
    return 3


def cmd_translate(args) -> int:
    from .translate import translate_paths

    written = translate_paths(args.ckpt, args.inputs, args.out, direction=args.direction, tile=args.tile,
                              overlap=args.overlap, device=args.device or "cpu", ema=not args.no_ema)
    print(f"translated {len(written)} image(s) into {args.out}")
    return 0


def cmd_upscale(args) -> int:
    from .upscale import upscale_paths

    written, scale = upscale_paths(args.ckpt, args.inputs, args.out, tile=args.tile, overlap=args.overlap,
                                   device=args.device or "cpu", ema=not args.no_ema)
    print(f"upscaled {len(written)} image(s) x{scale} into {args.out}")
    return 0


def cmd_export(args) -> int:
    from .export import export, summary

    result = export(args.run, args.format, args.out, direction=args.direction, ema=not args.no_ema,
                    opset=args.opset, tolerance=args.atol)
    print(summary(result))
    return 0


def cmd_bench(args) -> int:
    import json

    from .bench import check_positive_finite, print_result, run_bench

    check_positive_finite("--peak-tflops", args.peak_tflops)
    res = run_bench(args.target, overrides=args.overrides, batch=args.batch, device=args.device or "auto",
                    amp=args.amp, compile_mode=args.compile, channels_last=args.channels_last,
                    cuda_graphs=args.cuda_graphs, steps=args.steps,
                    warmup=args.warmup, repeats=args.repeats, sample=not args.no_sample, peak_tflops=args.peak_tflops,
                    echo=lambda line: _err(f"ganforge: {line}"))
    print_result(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res.as_dict(), indent=2) + "\n")
    return 0


def cmd_eval(args) -> int:
    from .evaluate import evaluate, format_result, write_record

    weights = args.inception_weights or None
    metrics = args.metrics.split(",") if args.metrics else None
    rec = evaluate(args.target, args.ref, metrics=metrics, n=args.n, extractor=args.extractor,
                   batch_size=args.batch_size, seed=args.seed, device=args.device or "cpu", ref_split=args.ref_split,
                   ref_root=args.ref_root, inception_weights=weights, use_cache=not args.no_cache,
                   y_channel=args.y_channel, crop_border=args.crop_border)
    print(format_result(rec))
    out = args.json
    if out is None and (Path(args.target) / "config.yaml").is_file():
        kind = rec.get("extractor") or ("heldout" if "heldout" in rec else "paired")
        out = str(Path(args.target) / f"eval-{kind}.json")
    if out:
        write_record(rec, out)
        print(f"wrote {out}")
    return 0


def cmd_import(args) -> int:
    from .tools.importer import import_generator

    out = import_generator(args.file, args.out)
    print(f"ok  {out}  (try: ganforge sample {out} --trunc 0.7 --seeds 0-3)")
    return 0


def cmd_weights_fetch(args) -> int:
    from .metrics import fetch_inception_weights
    from .tools.pretrained_zoo import ZOO, fetch_pretrained

    if args.name in ZOO:
        path = fetch_pretrained(args.name, args.to, url=args.url)
        print(f"ok  {path}  (convert it: ganforge import {path} --out runs/{args.name})")
        return 0
    if args.name == "vgg19":
        from .metrics.vgg_net import VGG19_ENV, fetch_vgg19_weights

        path = fetch_vgg19_weights(args.to, url=args.url)
        print(f"ok  {path}  (the SRGAN content loss finds it there; elsewhere set {VGG19_ENV}={path} or "
              f"recipe.vgg_weights={path})")
        return 0
    if args.name != "inception":
        raise GanforgeError(f"unknown weights {args.name!r} (known: inception, vgg19, {', '.join(ZOO)})")
    path = fetch_inception_weights(args.to, url=args.url)
    print(f"ok  {path}  (set GANFORGE_INCEPTION={path} or pass --inception-weights)")
    return 0


def cmd_data_check(args) -> int:
    from .data.check import check

    report = check(args.path)
    print(report.format())
    return 0 if report.ok else 1


def cmd_data_fetch(args) -> int:
    from .data.fetch import fetch

    files = fetch(args.name, args.to, base_url=args.url)
    for f in files:
        print(f"ok  {f}")
    return 0


def cmd_serve(args) -> int:
    from .serve import serve

    serve(args.runs, host=args.host, port=args.port, device=args.device or "cpu", cache_size=args.cache,
          max_upload_mb=args.max_upload_mb)
    return 0

VALUE_OPTIONS = ("--strengths",)  # their values may start with '-' (-3:3:7), which argparse takes for an option


def _join_values(argv: list[str]) -> list[str]:
    """`--strengths -3:3:7` -> `--strengths=-3:3:7`, so that argparse reads the value."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in VALUE_OPTIONS and i + 1 < len(argv) and argv[i + 1].startswith("-") and argv[i + 1] != "--":
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `ganforge` command."""
    from . import __version__

    p = Parser(prog="ganforge", description="Train, sample and inspect classic GANs.")
    p.add_argument("--version", action="version", version=f"ganforge {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("train", help="train a model or preset", description="Train a model or preset. "
                       "Overrides are key=value (section.key=value when ambiguous), e.g. steps=500 model.ngf=32.")
    t.add_argument("target", nargs="?", default=None, help="preset or model name (dcgan, cgan, wgan, wgan-gp, gan, ...) or a YAML file")
    t.add_argument("overrides", nargs="*", help="key=value config overrides")
    t.add_argument("--data", help="dataset: built-in name (mnist, digits) or a path")
    t.add_argument("--name", help="run name (folder under runs/)")
    t.add_argument("--resume", nargs="?", const="", default=None, help="continue a run: its folder or a checkpoint "
                   "(no value: the run named by --name)")
    t.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    t.add_argument("--dry-run", action="store_true", help="print the resolved config and stop")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="sample a grid from a trained generator")
    s.add_argument("path", help="run folder or checkpoint folder")
    s.add_argument("-n", type=positive_int, default=None, help="number of samples (default 64)")
    s.add_argument("--out", default="samples.png", help="output image")
    s.add_argument("--seed", type=seed_int, default=None, help="seed of the n latents (default 0)")
    s.add_argument("--seeds", default=None, help="one image per seed, e.g. 0-63 or 1,5,9 (instead of -n/--seed)")
    s.add_argument("--trunc", type=float, default=None, metavar="T",
                   help="truncation: on StyleGAN runs psi in [0, 2] towards the tracked mean w; on other noise "
                   "models (BigGAN) the threshold beyond which entries of z are redrawn (>= 0.04; lower: "
                   "closer to typical, less varied)")
    s.add_argument("--class", dest="cls", type=count_int, default=None, help="class label for conditional models")
    s.add_argument("--nrow", type=positive_int, default=None, help="images per row")
    s.add_argument("--no-ema", action="store_true", help="use the raw generator, not its EMA")
    s.add_argument("--device", default=None)
    s.set_defaults(func=cmd_sample)

    from .cli_explore import add_explore_commands

    add_explore_commands(sub)

    m = sub.add_parser("models", help="list models, recipes, presets and losses")
    m.add_argument("--params", action="store_true", help="show parameter counts of the default networks")
    m.set_defaults(func=cmd_models)

    sm = sub.add_parser("summary", help="layers, output shapes and parameter counts of a model")
    sm.add_argument("target", help="model or preset name")
    sm.add_argument("overrides", nargs="*", help="key=value model overrides, e.g. model.image_size=64")
    sm.set_defaults(func=cmd_summary)

    tr = sub.add_parser("translate", help="translate images of any size with a Pix2Pix or CycleGAN checkpoint")
    tr.add_argument("ckpt", help="run folder or checkpoint folder")
    tr.add_argument("inputs", nargs="+", help="image files or folders")
    tr.add_argument("--out", required=True, help="output folder")
    tr.add_argument("--direction", default=None, help="AtoB or BtoA (CycleGAN; Pix2Pix uses its training direction)")
    tr.add_argument("--tile", type=positive_int, default=None, help="tile size (default: the training size)")
    tr.add_argument("--overlap", type=count_int, default=None, help="tile overlap in pixels (default: tile/4)")
    tr.add_argument("--no-ema", action="store_true")
    tr.add_argument("--device", default=None)
    tr.set_defaults(func=cmd_translate)

    up = sub.add_parser("upscale", help="upscale images of any size with a super-resolution (SRGAN) checkpoint")
    up.add_argument("ckpt", help="run folder or checkpoint folder")
    up.add_argument("inputs", nargs="+", help="image files or folders")
    up.add_argument("--out", required=True, help="output folder (each file keeps its name and format)")
    up.add_argument("--tile", type=positive_int, default=128, help="tile size in input pixels (default 128)")
    up.add_argument("--overlap", type=count_int, default=None, help="tile overlap in input pixels (default: tile/8)")
    up.add_argument("--no-ema", action="store_true")
    up.add_argument("--device", default=None)
    up.set_defaults(func=cmd_upscale)

    ex = sub.add_parser("export", help="export a run's generator to ONNX or TorchScript, checked against PyTorch",
                        description="Export the generator of a run (its EMA weights unless --no-ema) with a dynamic "
                        "batch axis (and, for image inputs, dynamic height and width: multiples of the model's "
                        "size multiple, written in FILE.json). Outputs are clamped to [-1, 1] as `ganforge sample` "
                        "clamps; StyleGANs export with their fixed noise and no truncation. The file is run on "
                        "seeded inputs and compared with PyTorch; above the tolerance nothing is written.")
    ex.add_argument("run", help="run folder or checkpoint folder")
    ex.add_argument("--format", required=True, metavar="{onnx,torchscript}", help="onnx (.onnx) or torchscript (.pt)")
    ex.add_argument("--out", required=True, help="file to write (.onnx or .pt); FILE.json describes its inputs")
    ex.add_argument("--direction", default=None, help="AtoB or BtoA (CycleGAN; Pix2Pix: its training direction)")
    ex.add_argument("--no-ema", action="store_true", help="export the raw generator, not its EMA")
    ex.add_argument("--opset", type=positive_int, default=None, help="ONNX opset (default 18)")
    ex.add_argument("--atol", type=float, default=None, help="largest accepted |export - pytorch| (default 1e-4)")
    ex.set_defaults(func=cmd_export)

    bn = sub.add_parser("bench", help="training and sampling images/s, FLOPs per image and MFU of a model or preset",
                        description="Time the training step `ganforge train` runs (data, recipe step, EMA) and the "
                        "generator's sampling, after warm-up steps, over repeats; count FLOPs per image with "
                        "torch.utils.flop_counter and give the model-FLOPs utilisation against the device's peak "
                        "(a table of common GPUs, or --peak-tflops). Nothing is written. A batch that does not fit "
                        "in memory is refused with the largest that does.")
    bn.add_argument("target", help="preset or model name, or a YAML file")
    bn.add_argument("overrides", nargs="*", help="key=value config overrides")
    bn.add_argument("--batch", type=positive_int, default=None, help="batch size (default: the preset's)")
    bn.add_argument("--amp", nargs="?", const="auto", default=None, choices=("off", "auto", "bf16", "fp16"),
                    help="mixed precision (no value: auto; default: the config's train.amp)")
    bn.add_argument("--compile", nargs="?", const="default", default=None,
                    choices=("off", "default", "max-autotune"),
                    help="torch.compile the networks (no value: default mode)")
    bn.add_argument("--channels-last", default=None, choices=("auto", "on", "off"), help="NHWC memory format")
    bn.add_argument("--cuda-graphs", default=None, choices=("auto", "on", "off"),
                    help="replay whole training steps as CUDA graphs (default: the config's train.cuda_graphs)")
    bn.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    bn.add_argument("--steps", type=positive_int, default=20, help="timed steps per repeat (default 20)")
    bn.add_argument("--warmup", type=count_int, default=5, help="untimed steps first (default 5)")
    bn.add_argument("--repeats", type=positive_int, default=5, help="timed repeats (default 5)")
    bn.add_argument("--peak-tflops", type=float, default=None, help="the device's peak TFLOP/s for MFU")
    bn.add_argument("--no-sample", action="store_true", help="time training only")
    bn.add_argument("--json", default=None, help="also write the figures to this JSON file")
    bn.set_defaults(func=cmd_bench)

    e = sub.add_parser("eval", help="FID, KID, IS, precision/recall of a run or folder; PSNR/SSIM/L1 of folders")
    e.add_argument("target", help="run folder, checkpoint folder or image folder")
    e.add_argument("--ref", default=None, help="reference data: built-in name (mnist) or a path; a translation "
                   "run defaults to the held-out split of its own data")
    e.add_argument("--metrics", default=None, help="comma list of fid,kid,is,pr,dc,psnr,ssim,l1 (default: fid,kid,pr; "
                   "for a translation run its held-out psnr,ssim,l1, and for CycleGAN fid,kid of each direction "
                   "and of the identity when the extractor is available)")
    e.add_argument("--n", type=_bounded_int(2), default=10000, help="number of generated (and at most reference) images")
    e.add_argument("--extractor", default="auto", help="auto (mnist-judge for 1-channel data, else inception; "
                   "translation runs: inception), inception, mnist-judge or ganforge-photo-v1 (shipped, offline, "
                   "for small colour images; its own scale, never comparable with Inception FID)")
    e.add_argument("--inception-weights", default=None, help="path of pt_inception-2015-12-05-6726825d.pth "
                   "(or set GANFORGE_INCEPTION)")
    e.add_argument("--ref-split", default="train", help="train or test split of the reference")
    e.add_argument("--ref-root", default=None, help="folder holding standard datasets (mnist-idx, cifar10, ...)")
    e.add_argument("--batch-size", type=positive_int, default=100)
    e.add_argument("--seed", type=seed_int, default=0)
    e.add_argument("--json", default=None, help="write the record here (default for runs: RUN/eval-EXTRACTOR.json)")
    e.add_argument("--no-cache", action="store_true", help="recompute reference statistics")
    e.add_argument("--y-channel", action="store_true", help="PSNR/SSIM on the Y channel (BT.601)")
    e.add_argument("--crop-border", type=count_int, default=0, help="pixels cropped from each border for PSNR/SSIM")
    e.add_argument("--device", default=None)
    e.set_defaults(func=cmd_eval)

    w = sub.add_parser("weights", help="download pinned feature-extractor weights")
    wsub = w.add_subparsers(dest="weights_cmd", required=True)
    wf = wsub.add_parser("fetch", help="download and verify (SHA-256) a weight file")
    wf.add_argument("name", help="inception (FID), vgg19 (SRGAN's content loss, torchvision's vgg19-dcbb9e9d.pth), "
                    "or a StyleGAN2 network: stylegan2-ffhq-1024, stylegan2-metfaces-1024, "
                    "stylegan2-afhqdog-512, stylegan2-brecahad-512, stylegan2-cifar10-32 (pinned); "
                    "stylegan2-afhqcat-512, stylegan2-afhqwild-512, stylegan2-ffhq-512, stylegan2-ffhq-256 "
                    "(no checksum pinned: refused)")
    wf.add_argument("--to", default=str(weights_dir()), help="destination folder (default: $GANFORGE_CACHE/weights, "
                    "where evaluation looks)")
    wf.add_argument("--url", default=None, help="mirror URL (file:// works)")
    wf.set_defaults(func=cmd_weights_fetch)

    im = sub.add_parser("import", help="convert a pretrained StyleGAN2 generator into a run (runs nothing from "
                        "the file)")
    im.add_argument("file", help="stylegan2-ada-pytorch / stylegan3 network pickle (.pkl) or rosinality "
                    "stylegan2-pytorch checkpoint (.pt)")
    im.add_argument("--out", required=True, help="run folder to create (must not exist, or be empty)")
    im.set_defaults(func=cmd_import)

    sv = sub.add_parser("serve", help="a local web page and JSON API for the runs of a folder",
                        description="Serve a page (and a JSON API, schema at /openapi.json) to sample, explore, "
                        "translate and upscale with the runs found under --runs. Listens on 127.0.0.1 unless "
                        "--host says otherwise; there is no authentication.")
    sv.add_argument("--runs", default="runs", help="folder holding the runs (default: runs)")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    sv.add_argument("--port", type=_bounded_int(0, 65536), default=8000, help="port (default 8000; 0: a free one)")
    sv.add_argument("--device", default=None, help="cpu (default), cuda or mps")
    sv.add_argument("--cache", type=positive_int, default=4, help="models kept loaded (default 4)")
    sv.add_argument("--max-upload-mb", type=float, default=8.0, help="largest accepted upload (default 8 MiB)")
    sv.set_defaults(func=cmd_serve)

    d = sub.add_parser("data", help="inspect or download datasets")
    dsub = d.add_subparsers(dest="data_cmd", required=True)
    dc = dsub.add_parser("check", help="decode every image of a dataset and report (exit code 1 on problems)",
                         description="Decode every image of a dataset and report sizes, modes, classes and "
                         "corrupt files. Exit code 0: all is well; 1: corrupt files were found or nothing is "
                         "readable; 2: the path cannot be read as a dataset.")
    dc.add_argument("path")
    dc.set_defaults(func=cmd_data_check)
    df = dsub.add_parser("fetch", help="download a standard dataset, verifying pinned SHA-256 checksums")
    df.add_argument("name", help="mnist, fashion-mnist, cifar10, facades, horse2zebra")
    df.add_argument("--to", required=True, help="destination folder")
    df.add_argument("--url", default=None, help="mirror base URL (file:// works)")
    df.set_defaults(func=cmd_data_fetch)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `ganforge` console script."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # anywhere: while parsing, importing torch, building, training
        _err("ganforge: interrupted")
        return 130


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    try:
        # key=value overrides may follow options (`train dcgan --name x steps=5`): collect them too.
        args, extra = parser.parse_known_args(_join_values(list(sys.argv[1:] if argv is None else argv)))
        if extra:
            if hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
                args.overrides = list(args.overrides or []) + extra
            else:
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as e:  # --help, --version and usage errors (already printed by Parser.error)
        return 0 if e.code is None else e.code if isinstance(e.code, int) else 2
    try:
        return int(args.func(args) or 0)
    except TrainingDiverged as e:
        _err(f"ganforge: {e}")
        return 3
    except GanforgeError as e:
        if type(e).__name__ == "DistributedError":
            # Another process died or hung. Every rank says so (each knows only its own view), and leaves
            # at once: tearing a broken process group down can block or abort.
            _err(f"ganforge: error: {e}")
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(4)
        if _rank() == 0:  # under torchrun every rank meets the same bad input: one line, from rank 0
            _err(f"ganforge: error: {e}")
        return 2
    except BrokenPipeError:  # `ganforge summary ... | head`
        sys.stderr.close()
        return 0
    except FileNotFoundError as e:
        _err(f"ganforge: error: {e.strerror}: {e.filename}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
