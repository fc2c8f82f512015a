"""Speed of the report's CNN through fmtool's engine, beside a plain PyTorch loop in the same run.

Prints training and evaluation images/s, peak memory, the ratio fmtool/plain, and the start-up
time of `fmtool --help` and `fmtool classify`. Data is random (speed does not depend on it).

    python benchmarks/bench_cnn.py                      # quick: a few batches each
    python benchmarks/bench_cnn.py --batches 40 --device cuda --width 1.0
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from fmtool.cnn.inference import predict_logits
from fmtool.cnn.recipes import RECIPES as CNN_RECIPES
from fmtool.cnn.task import CNNTask
from fmtool.data import fashion
from fmtool.engine.checkpoint import Checkpoint, save_checkpoint
from fmtool.engine.device import choose_device, choose_precision, precision_name
from fmtool.engine.trainer import Trainer
from fmtool.models.cnn import FashionCNN


def synthetic(n: int) -> fashion.FashionMNIST:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (n,), generator=generator)
    return fashion.FashionMNIST(images, labels, images, labels, Path("synthetic"))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rate(fn, batches: int, batch_size: int, device: torch.device) -> float:
    """Images/s of `fn(i)` over `batches` calls."""
    sync(device)
    start = time.perf_counter()
    for i in range(batches):
        fn(i)
    sync(device)
    return batches * batch_size / (time.perf_counter() - start)


def compare(steps: dict, batches: int, batch_size: int, device: torch.device,
            warmup: int = 5, rounds: int = 3) -> dict[str, float]:
    """Best-of-`rounds` images/s of each step function, measured in alternation after warm-up.

    oneDNN and the allocator take several batches to settle, and a shared machine drifts;
    alternating the contenders and keeping each one's best run makes the ratio fair.
    """
    for step in steps.values():
        for i in range(warmup):
            step(i)
    best = dict.fromkeys(steps, 0.0)
    for _ in range(rounds):
        for name, step in steps.items():
            best[name] = max(best[name], rate(step, batches, batch_size, device))
    return best


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def plain_training(data, device, batch_size, width):
    """What a user would write by hand: fp32, a DataLoader over pre-resized tensors, Adam."""
    torch.manual_seed(0)
    model = FashionCNN(width=width).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4, weight_decay=1e-3)
    inputs = fashion.to_model_input(data.train_images)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(inputs, data.train_labels), batch_size=batch_size,
        shuffle=True, drop_last=True)
    batches = iter(loader)

    def step(_: int) -> None:
        nonlocal batches
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iter(loader)
            x, y = next(batches)
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        loss.item()  # a typical loop logs the loss every step

    return step, model


def plain_evaluation(model, data, device, batch_size):
    inputs = fashion.to_model_input(data.test_images)
    model.eval()

    def step(i: int) -> None:
        start = (i * batch_size) % (len(inputs) - batch_size)
        with torch.no_grad():
            model(inputs[start:start + batch_size].to(device)).argmax(1).cpu()

    return step


def fmtool_training(data, device, batch_size, width, precision, compile_model=False,
                    cuda_graph=False):
    torch.manual_seed(0)
    # The text network, the one the plain loop builds: both sides time the same model.
    recipe = CNN_RECIPES["paper"].with_overrides(batch_size=batch_size, val_size=0, variant="text")
    task = CNNTask(data, recipe, device, width=width, precision=precision)
    trainer = Trainer(task, recipe, Path(tempfile.mkdtemp()), device, compile=compile_model,
                      cuda_graph=cuda_graph, channels_last=True)
    trainer.model.train()
    # As the Trainer's epoch loop does (`_on_device`): each epoch's index batches are copied to
    # the device at once, not one small host-to-device copy per step; that copy (and drawing the
    # epoch's permutation) is timed where an epoch starts, in whichever step that falls.
    per_epoch = len(task.batches(0))
    batches: list[torch.Tensor] = []
    done = 0  # steps taken, across calls

    def step(_: int) -> None:
        nonlocal batches, done
        epoch, index = divmod(done, per_epoch)
        if index == 0:
            batches = trainer._on_device(task.batches(epoch))
        trainer.train_step(batches[index])
        done += 1

    return step, trainer.model


def fmtool_evaluation(model, data, device, batch_size, precision):
    def step(i: int) -> None:
        start = (i * batch_size) % (len(data.test_images) - batch_size)
        predict_logits(model, data.test_images[start:start + batch_size], 32, device,
                       batch_size=batch_size, dtype=precision)

    return step


def startup_seconds(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "fmtool", *args], check=True, capture_output=True)
    return time.perf_counter() - start


def classify_startup() -> tuple[float, float]:
    from PIL import Image

    with tempfile.TemporaryDirectory() as folder:
        ckpt = Path(folder) / "model.pt"
        task = CNNTask(synthetic(8), CNN_RECIPES["paper"], torch.device("cpu"))
        save_checkpoint(ckpt, Checkpoint(task.meta(), task.model.state_dict()))
        Image.new("L", (28, 28)).save(Path(folder) / "x.png")
        help_s = startup_seconds(["--help"])
        classify_s = startup_seconds(["classify", str(Path(folder) / "x.png"), "--checkpoint",
                                      str(ckpt), "--device", "cpu"])
    return help_s, classify_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--compile", action="store_true", help="torch.compile fmtool's model")
    parser.add_argument("--cuda-graph", action="store_true",
                        help="replay fmtool's training step as a CUDA graph (CUDA only)")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--batches", type=int, default=8, help="timed batches per measurement")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--eval-batch-size", type=int, default=500)
    args = parser.parse_args()
    if args.compile and args.cuda_graph:  # as `fmtool train` refuses them together
        parser.error("--compile and --cuda-graph do not go together; choose one")

    device = choose_device(args.device)
    precision = choose_precision(args.precision, device)
    data = synthetic(max(args.batches + 4, 8) * max(args.batch_size, args.eval_batch_size))
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"width {args.width}, fmtool precision {precision_name(precision)}, "
          f"compile {'on' if args.compile else 'off'}, cuda graph {'on' if args.cuda_graph else 'off'}")

    plain_step, plain_model = plain_training(data, device, args.batch_size, args.width)
    ours_step, ours_model = fmtool_training(data, device, args.batch_size, args.width, precision,
                                            args.compile, args.cuda_graph)
    train = compare({"plain": plain_step, "fmtool": ours_step}, args.batches, args.batch_size, device)
    plain_train, ours_train = train["plain"], train["fmtool"]
    eval_images = args.batches * args.batch_size
    plain_eval = compare({"plain": plain_evaluation(plain_model, data, device, args.batch_size)},
                         args.batches, args.batch_size, device)["plain"]
    ours_eval = compare({"fmtool": fmtool_evaluation(ours_model, data, device, args.eval_batch_size,
                                                     precision)},
                        max(eval_images // args.eval_batch_size, 2), args.eval_batch_size,
                        device, warmup=2)["fmtool"]
    print(f"{'':<20}{'plain fp32':>14}{'fmtool':>14}{'ratio':>8}")
    print(f"{'train images/s':<20}{plain_train:>14.1f}{ours_train:>14.1f}{ours_train / plain_train:>8.2f}")
    print(f"{'eval images/s':<20}{plain_eval:>14.1f}{ours_eval:>14.1f}{ours_eval / plain_eval:>8.2f}")
    print(f"peak memory {peak_memory_mb(device):.0f} MB ({'GPU' if device.type == 'cuda' else 'process RSS'})")
    help_s, classify_s = classify_startup()
    print(f"start-up: fmtool --help {help_s:.2f} s, fmtool classify (one image) {classify_s:.2f} s")


if __name__ == "__main__":
    main()
