"""The linear probe issue 16 measures catdog's head against: logistic regression on frozen features, its L2 strength
C chosen by 5-fold cross-validation on the training photos only, refitted on all of them, then scored on held-out
photos. Reads float32 row-major feature files written by bench/backbone-presets.mjs:
  linear_probe.py FEATURE_SIZE TRAIN.f32 TRAIN_LABELS.json HELD_OUT.f32 HELD_OUT_LABELS.json
Prints one JSON line: the chosen C, the CV accuracy and the held-out errors.
"""
import json
import sys

import numpy as np
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold


def rows(path, width):
    return np.fromfile(path, dtype=np.float32).reshape(-1, width)


def main():
    width = int(sys.argv[1])
    x_train, x_held = rows(sys.argv[2], width), rows(sys.argv[4], width)
    with open(sys.argv[3]) as f:
        y_train = np.array(json.load(f))
    with open(sys.argv[5]) as f:
        y_held = np.array(json.load(f))
    probe = LogisticRegressionCV(
        Cs=np.logspace(-4, 4, 17), cv=StratifiedKFold(5, shuffle=True, random_state=0), max_iter=5000
    ).fit(x_train, y_train)
    chosen = float(probe.C_[0])
    cv_accuracy = float(probe.scores_[1].mean(axis=0).max())
    wrong = np.flatnonzero(probe.predict(x_held) != y_held)
    print(json.dumps({"C": chosen, "cvAccuracy": cv_accuracy, "trainPhotos": int(len(y_train)), "heldOutErrors": int(len(wrong)), "wrong": wrong.tolist()}))


main()
