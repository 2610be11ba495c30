// Gallery, health and Dataset views: a large view of any tile, and (for curators) relabel and delete, one photo or a selection.
(() => {
  const dialog = document.getElementById('photo-view');
  if (!dialog) return;
  const viewImage = document.getElementById('photo-view-image');
  const viewName = document.getElementById('photo-view-name');
  const viewMeta = document.getElementById('photo-view-meta');
  const viewStatus = document.getElementById('photo-view-status');
  const bulkBar = document.getElementById('bulk-bar');
  const bulkStatus = document.getElementById('bulk-status');
  const selectedCount = document.getElementById('selected-count');
  const selected = new Set();
  let opened;

  const errorOf = window.catdogApiError;

  /** The gallery's grid again with the same filters and page, or the whole page elsewhere (health, Dataset). */
  function reload() {
    const grid = document.getElementById('gallery-grid');
    if (grid && window.htmx) return window.htmx.ajax('GET', grid.dataset.reload, { target: '#gallery-grid', swap: 'outerHTML' });
    window.location.reload();
    return Promise.resolve();
  }

  async function curate(hashes, action) {
    const body = action === 'delete' ? { action: 'delete', hashes } : { action: 'relabel', label: action, hashes };
    const response = await fetch('/api/v1/images/bulk', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    if (!response.ok) throw new Error(await errorOf(response));
    const result = await response.json();
    return action === 'delete' ? `deleted ${result.deleted} photos (built versions keep them)` : `${result.changed} photos now labelled ${action}`;
  }

  function refreshSelection() {
    if (!bulkBar) return;
    for (const box of document.querySelectorAll('input.select')) box.checked = selected.has(box.value);
    selectedCount.textContent = String(selected.size);
    for (const button of bulkBar.querySelectorAll('button[data-bulk], #select-none')) button.disabled = selected.size === 0;
  }

  function open(button) {
    opened = button.dataset;
    dialog.dataset.hash = opened.hash;
    viewImage.src = opened.url;
    viewImage.alt = `${opened.label} photo ${opened.name}`;
    viewName.textContent = opened.name;
    const pDog = opened.pdog === '' ? undefined : Number(opened.pdog);
    viewMeta.textContent = [
      `label ${opened.label}`,
      opened.split ? `${opened.split} split` : '',
      `source ${opened.source}`,
      opened.size,
      pDog === undefined ? 'not scored by the serving model' : `serving model: P(dog) ${(pDog * 100).toFixed(1)}%`,
    ].filter(Boolean).join(' · ');
    viewStatus.textContent = '';
    dialog.showModal();
  }

  async function single(action) {
    if (!opened) return;
    viewStatus.textContent = 'saving…';
    try {
      const message = await curate([opened.hash], action);
      selected.delete(opened.hash);
      dialog.close();
      if (bulkStatus) bulkStatus.textContent = `${opened.name}: ${message}`;
      await reload();
    } catch (error) {
      viewStatus.textContent = error.message;
    }
  }

  document.addEventListener('click', (event) => {
    const target = event.target instanceof Element ? event.target : undefined;
    const tile = target?.closest('button.open');
    if (tile) open(tile);
  });
  document.addEventListener('change', (event) => {
    const box = event.target;
    if (!(box instanceof HTMLInputElement) || !box.classList.contains('select')) return;
    if (box.checked) selected.add(box.value);
    else selected.delete(box.value);
    refreshSelection();
  });
  // A new grid page (htmx swap) keeps the selection made on other pages.
  document.body.addEventListener('htmx:afterSwap', refreshSelection);

  for (const button of dialog.querySelectorAll('button[data-single]')) button.addEventListener('click', () => single(button.dataset.single));
  dialog.addEventListener('keydown', (event) => {
    const action = { c: 'cat', d: 'dog', delete: 'delete' }[event.key.toLowerCase()];
    if (action && dialog.querySelector(`button[data-single="${action}"]`)) {
      event.preventDefault();
      single(action);
    }
  });

  if (bulkBar) {
    document.getElementById('select-page').addEventListener('click', () => {
      for (const box of document.querySelectorAll('input.select')) selected.add(box.value);
      refreshSelection();
    });
    document.getElementById('select-none').addEventListener('click', () => {
      selected.clear();
      refreshSelection();
    });
    for (const button of bulkBar.querySelectorAll('button[data-bulk]')) {
      button.addEventListener('click', async () => {
        const action = button.dataset.bulk;
        const hashes = [...selected];
        if (action === 'delete' && !window.confirm(`Delete ${hashes.length} photos from the data set? Versions already built keep them.`)) return;
        bulkStatus.textContent = 'saving…';
        try {
          bulkStatus.textContent = await curate(hashes, action);
          selected.clear();
          refreshSelection();
          await reload();
        } catch (error) {
          bulkStatus.textContent = error.message;
        }
      });
    }
  }

  const scoreButton = document.getElementById('score-photos');
  scoreButton?.addEventListener('click', async () => {
    scoreButton.disabled = true;
    const count = document.getElementById('unscored-count');
    for (;;) {
      const response = await fetch('/api/v1/images/scores', { method: 'POST' });
      if (!response.ok) {
        document.getElementById('scoring').textContent = await errorOf(response);
        return;
      }
      const result = await response.json();
      count.textContent = String(result.remaining);
      if (result.remaining === 0 || result.scored === 0) break;
    }
    document.getElementById('scoring').textContent = 'Every labelled photo is scored by the serving model.';
    await reload();
  });
})();
