#!/bin/sh
# Re-takes docs/screenshots/models-comparison-{desktop,phone}.png: the Models page's comparison of two real models on
# one test split, as the browser test drives it in Chromium (needs ../shared and /usr/bin/chromium).
set -e
cd "$(dirname "$0")/.."
CATDOG_SCREENSHOTS=docs/screenshots npx vitest run src/web/models-page.test.ts
