"""Peer for bench/preprocess.mjs: the same preprocessing with OpenCV or Pillow, on `workers` processes.

Each photo is decoded (EXIF orientation applied), resized to `size` and normalised to float32 x/127.5 - 1.
Prints one JSON line: {"value": images/s, "images": n, "seconds": s}.
--inline: the first `images` photos once each, in this process, untimed (for bench/instructions.mjs under valgrind).
"""
import argparse
import io
import json
import multiprocessing
import os
import time

import numpy as np

FOLDER = os.path.join(os.environ.get("CATDOG_SHARED", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared")), "data", "kaggle-fullres-sample")

photos = []
library = ""
size = 224


def load(files, chosen_library, chosen_size):
    global photos, library, size
    library = chosen_library
    size = chosen_size
    if library == "opencv":
        import cv2
        cv2.setNumThreads(1)
    photos = [open(f, "rb").read() for f in files]


def opencv_one(data):
    import cv2
    # IMREAD_COLOR applies the EXIF orientation.
    image = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 127.5 - 1


def pillow_one(data):
    from PIL import Image, ImageOps
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    return np.asarray(image.resize((size, size), Image.BILINEAR), dtype=np.float32) / 127.5 - 1


def process(index):
    one = opencv_one if library == "opencv" else pillow_one
    return float(one(photos[index])[0, 0, 0])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--library", choices=["opencv", "pillow"], required=True)
    parser.add_argument("--images", type=int, default=399)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--inline", action="store_true")
    args = parser.parse_args()
    files = sorted(os.path.join(FOLDER, label, name) for label in ("cat", "dog") for name in os.listdir(os.path.join(FOLDER, label)))
    files = sorted(files, key=lambda f: (os.path.basename(os.path.dirname(f)), os.path.basename(f)))[: args.images]
    if args.inline:
        load(files, args.library, args.size)
        for index in range(len(files)):
            process(index)
        return
    work = list(range(len(files))) * args.passes
    with multiprocessing.get_context("fork").Pool(args.workers, initializer=load, initargs=(files, args.library, args.size)) as pool:
        pool.map(process, range(args.workers))  # workers started and warm before the clock
        started = time.perf_counter()
        pool.map(process, work, chunksize=8)
        seconds = time.perf_counter() - started
    print(json.dumps({"value": len(work) / seconds, "images": len(work), "seconds": seconds}))


if __name__ == "__main__":
    main()
