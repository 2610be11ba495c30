"""Peer for bench/serving.mjs: a minimal Flask + Keras server answering what `catdog serve` answers before any
training: zero-shot cat-or-dog from MobileNet v1 0.75's ImageNet head (the shared tfjs weights).

POST /predict with a multipart `file` → {"label", "pDog"}. Usage: flask_server.py PORT. Flask's threaded dev
server; one lock around the model, since a Keras model is not documented as safe for concurrent predict calls.
No storage, no database, no auth: only decode, resize, forward pass, answer.
"""
import io
import logging
import sys
import threading

import numpy as np
from flask import Flask, jsonify, request
from PIL import Image, ImageOps
from werkzeug.serving import WSGIRequestHandler

from tfjs_mobilenet import mobilenet

DOGS, CATS = slice(151, 269), slice(281, 286)
model = mobilenet(include_top=True)
model.predict_on_batch(np.zeros((1, 224, 224, 3), "float32"))
lock = threading.Lock()
app = Flask(__name__)
logging.getLogger("werkzeug").setLevel(logging.ERROR)


@app.post("/predict")
def predict():
    upload = request.files["file"].read()
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(upload))).convert("RGB").resize((224, 224), Image.BILINEAR)
    x = np.asarray(image, dtype="float32")[None]
    with lock:
        probabilities = model.predict_on_batch(x)[0]
    dog = probabilities[DOGS].sum() / (DOGS.stop - DOGS.start)
    cat = probabilities[CATS].sum() / (CATS.stop - CATS.start)
    p_dog = float(dog / (dog + cat))
    return jsonify(label="dog" if p_dog >= 0.5 else "cat", pDog=p_dog)


@app.get("/health")
def health():
    return "ok"


if __name__ == "__main__":
    # Keep-alive, as catdog's server and any production WSGI server have; werkzeug defaults to HTTP/1.0.
    WSGIRequestHandler.protocol_version = "HTTP/1.1"
    app.run(host="127.0.0.1", port=int(sys.argv[1]), threaded=True)
