#!/usr/bin/env bash
# Re-takes the documentation's screenshots (docs/screenshots/*.png) of the Review, Gallery and Dataset health views at
# desktop and phone size, by running their browser test against real photos in ../shared with Debian's Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
UPDATE_SCREENSHOTS=1 npx vitest run test/e2e/curation.test.ts
ls -1 docs/screenshots/*.png
