// Review queue: one photo at a time, keyboard first (C cat, D dog, N neither, S skip, U undo).
(() => {
  const item = document.getElementById('review-item');
  const image = document.getElementById('review-image');
  const verdict = document.getElementById('review-verdict');
  const empty = document.getElementById('review-empty');
  const status = document.getElementById('review-status');
  const strategy = document.getElementById('strategy');
  const undoButton = document.getElementById('undo');
  const validatedCount = document.getElementById('validated-count');
  const pendingCount = document.getElementById('pending-count');

  const skipped = [];
  const done = [];
  let current;

  async function refreshProgress() {
    const response = await fetch('/api/v1/review/progress');
    if (!response.ok) return;
    const progress = await response.json();
    validatedCount.textContent = String(progress.validated);
    pendingCount.textContent = String(progress.pending);
  }

  function show(prediction) {
    current = prediction;
    item.hidden = !prediction;
    empty.hidden = Boolean(prediction);
    if (!prediction) return;
    image.src = prediction.imageUrl;
    verdict.textContent = `model says ${(prediction.confidence * 100).toFixed(1)}% ${prediction.label}`;
  }

  async function loadNext() {
    const query = new URLSearchParams({ strategy: strategy.value });
    if (skipped.length > 0) query.set('exclude', skipped.slice(-100).join(','));
    const response = await fetch(`/api/v1/review/next?${query}`);
    show(response.status === 200 ? await response.json() : undefined);
  }

  async function validate(label) {
    if (!current) return;
    const prediction = current;
    const response = await fetch(`/api/v1/predictions/${encodeURIComponent(prediction.id)}/validation`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ label }),
    });
    if (!response.ok) {
      status.textContent = (await response.json()).error.message;
      return;
    }
    done.push(prediction);
    undoButton.disabled = false;
    status.textContent = `marked ${label}`;
    await Promise.all([loadNext(), refreshProgress()]);
  }

  async function undo() {
    const prediction = done.pop();
    undoButton.disabled = done.length === 0;
    if (!prediction) return;
    const response = await fetch(`/api/v1/predictions/${encodeURIComponent(prediction.id)}/validation`, { method: 'DELETE' });
    status.textContent = response.ok ? 'undone' : (await response.json()).error.message;
    show(prediction);
    await refreshProgress();
  }

  function skip() {
    if (!current) return;
    skipped.push(current.id);
    status.textContent = 'skipped';
    loadNext();
  }

  const keys = { c: () => validate('cat'), d: () => validate('dog'), n: () => validate('neither'), s: skip, u: undo };
  document.addEventListener('keydown', (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.target instanceof HTMLSelectElement) return;
    const action = keys[event.key.toLowerCase()];
    if (action) {
      event.preventDefault();
      action();
    }
  });
  for (const button of item.querySelectorAll('button[data-label]')) button.addEventListener('click', () => validate(button.dataset.label));
  document.getElementById('skip').addEventListener('click', skip);
  undoButton.addEventListener('click', undo);
  strategy.addEventListener('change', loadNext);
  loadNext();
})();
