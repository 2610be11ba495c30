// Review queue: one photo at a time, keyboard first (A accept the model's guess, C cat, D dog, N neither, S skip, U undo).
(() => {
  const section = document.querySelector('section.review');
  const canLabel = section.dataset.canLabel === 'true';
  const item = document.getElementById('review-item');
  const image = document.getElementById('review-image');
  const verdict = document.getElementById('review-verdict');
  const details = document.getElementById('review-details');
  const empty = document.getElementById('review-empty');
  const status = document.getElementById('review-status');
  const strategy = document.getElementById('strategy');
  const undoButton = document.getElementById('undo');
  const acceptLabel = document.getElementById('accept-label');
  const restoreButton = document.getElementById('restore-skips');
  const counts = {
    validated: document.getElementById('validated-count'),
    pending: document.getElementById('pending-count'),
    skipped: document.getElementById('skipped-count'),
  };
  const skippedLine = document.getElementById('skipped-line');

  const done = [];
  let current;

  const percent = (value) => `${(value * 100).toFixed(1)}%`;
  const guessOf = (pDog) => (pDog >= 0.5 ? 'dog' : 'cat');

  function showProgress(progress) {
    counts.validated.textContent = String(progress.validated);
    counts.pending.textContent = String(progress.pending);
    counts.skipped.textContent = String(progress.skipped);
    skippedLine.hidden = progress.skipped === 0;
  }

  async function refreshProgress() {
    const response = await fetch('/api/v1/review/progress');
    if (response.ok) showProgress(await response.json());
  }

  const errorOf = window.catdogApiError;

  /** The serving model's current view when it has scored the photo, else the prediction's own. */
  function guess(prediction) {
    if (prediction.serving) {
      const pDog = prediction.serving.pDog;
      const model = prediction.serving.version === null ? prediction.serving.modelId : `model v${prediction.serving.version}`;
      return { label: guessOf(pDog), confidence: Math.max(pDog, 1 - pDog), model };
    }
    const model = prediction.modelVersion === null ? prediction.modelId : `model v${prediction.modelVersion}`;
    return { label: prediction.label, confidence: prediction.confidence, model };
  }

  function show(prediction) {
    current = prediction;
    item.hidden = !prediction;
    empty.hidden = Boolean(prediction);
    if (!prediction) return;
    const { label, confidence, model } = guess(prediction);
    current.guess = label;
    image.src = prediction.imageUrl;
    image.alt = `photo to review: ${prediction.fileName ?? prediction.imageHash}`;
    // A tiny photo is drawn large with visible pixels rather than as a dot.
    image.classList.toggle('pixelated', Math.max(prediction.image.width, prediction.image.height) < 64);
    verdict.textContent = `${model} says ${percent(confidence)} ${label}`;
    details.textContent = [
      prediction.fileName ?? prediction.imageHash.slice(0, 12),
      `${prediction.image.width}×${prediction.image.height}`,
      prediction.serving && prediction.serving.modelId !== prediction.modelId ? `first predicted by ${prediction.modelId}` : '',
    ].filter(Boolean).join(' · ');
    if (acceptLabel) acceptLabel.textContent = label;
  }

  async function loadNext() {
    const response = await fetch(`/api/v1/review/next?${new URLSearchParams({ strategy: strategy.value })}`);
    show(response.status === 200 ? await response.json() : undefined);
  }

  async function validate(label) {
    if (!current || !canLabel) return;
    const prediction = current;
    const response = await fetch(`/api/v1/predictions/${encodeURIComponent(prediction.id)}/validation`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ label }),
    });
    if (!response.ok) {
      status.textContent = await errorOf(response);
      return;
    }
    done.push(prediction);
    undoButton.disabled = false;
    status.textContent = `marked ${prediction.fileName ?? 'the photo'} ${label}`;
    await Promise.all([loadNext(), refreshProgress()]);
  }

  async function undo() {
    const prediction = done.pop();
    undoButton.disabled = done.length === 0;
    if (!prediction) return;
    const response = await fetch(`/api/v1/predictions/${encodeURIComponent(prediction.id)}/validation`, { method: 'DELETE' });
    status.textContent = response.ok ? 'undone' : await errorOf(response);
    show(prediction);
    await refreshProgress();
  }

  async function skip() {
    if (!current || !canLabel) return;
    const response = await fetch('/api/v1/review/skips', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ predictionId: current.id }),
    });
    if (!response.ok) {
      status.textContent = await errorOf(response);
      return;
    }
    showProgress(await response.json());
    status.textContent = 'skipped: it stays out of your queue until you bring skipped photos back';
    await loadNext();
  }

  async function restoreSkips() {
    const response = await fetch('/api/v1/review/skips', { method: 'DELETE' });
    if (!response.ok) {
      status.textContent = await errorOf(response);
      return;
    }
    const progress = await response.json();
    showProgress(progress);
    status.textContent = `${progress.restored} skipped photos are back in the queue`;
    await loadNext();
  }

  const keys = {
    a: () => current && validate(current.guess),
    enter: () => current && validate(current.guess),
    c: () => validate('cat'),
    d: () => validate('dog'),
    n: () => validate('neither'),
    s: skip,
    u: undo,
  };
  document.addEventListener('keydown', (event) => {
    if (!canLabel || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target instanceof HTMLSelectElement) return;
    // Enter on a focused button presses that button.
    if (event.key === 'Enter' && event.target instanceof HTMLButtonElement) return;
    const action = keys[event.key.toLowerCase()];
    if (action) {
      event.preventDefault();
      action();
    }
  });
  if (canLabel) {
    for (const button of item.querySelectorAll('button[data-label]')) button.addEventListener('click', () => validate(button.dataset.label));
    document.getElementById('accept').addEventListener('click', () => current && validate(current.guess));
    document.getElementById('skip').addEventListener('click', skip);
    undoButton.addEventListener('click', undo);
    restoreButton?.addEventListener('click', restoreSkips);
  }
  strategy.addEventListener('change', loadNext);
  loadNext();
})();
