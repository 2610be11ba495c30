// Predict page: upload photos one request each (so each has its own progress bar), show the verdict, and send
// the user's confirmation or correction to the validation API. Text goes in with textContent only.
(() => {
  const dropzone = document.getElementById('dropzone');
  const input = document.getElementById('file-input');
  const results = document.getElementById('results');
  const template = document.getElementById('result-template');
  const servingModel = document.getElementById('serving-model');

  const percent = (value) => `${(value * 100).toFixed(1)}%`;

  function upload(file, onProgress) {
    return new Promise((resolve, reject) => {
      const request = new XMLHttpRequest();
      request.open('POST', '/api/v1/predictions');
      request.responseType = 'json';
      request.upload.addEventListener('progress', (event) => {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      });
      request.addEventListener('load', () => {
        const body = request.response;
        if (request.status === 200 && body && body.predictions) resolve(body.predictions[0]);
        else reject(new Error(body && body.error ? body.error.message : `upload failed (HTTP ${request.status})`));
      });
      request.addEventListener('error', () => reject(new Error('network error while uploading')));
      const form = new FormData();
      form.append('file', file);
      request.send(form);
    });
  }

  async function sendValidation(prediction, label, item) {
    const feedback = item.querySelector('.feedback');
    feedback.textContent = 'saving…';
    const response = await fetch(`/api/v1/predictions/${encodeURIComponent(prediction.id)}/validation`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ label }),
    });
    const body = await response.json();
    feedback.textContent = response.ok ? `saved: ${body.validatedLabel}` : body.error.message;
    item.dataset.validated = response.ok ? body.validatedLabel : '';
  }

  function showPrediction(item, prediction) {
    item.querySelector('.upload-progress').hidden = true;
    // "neither" has no confidence of its own: say why the model thinks it is no cat and no dog.
    item.querySelector('.verdict').textContent =
      prediction.label === 'neither'
        ? `neither cat nor dog (${prediction.reason === 'far_from_classes' ? 'unlike the cats and dogs it learnt' : 'no animal seen'})`
        : `${percent(prediction.confidence)} ${prediction.label}`;
    item.querySelector('.thumb').alt = `photo classified as ${prediction.label}`;
    const fill = item.querySelector('.confidence-fill');
    fill.style.width = percent(prediction.confidence);
    fill.classList.add(prediction.label);
    const version = prediction.modelVersion === null ? '' : ` (v${prediction.modelVersion})`;
    item.querySelector('.model').textContent = `model ${prediction.modelId}${version}`;
    if (servingModel) servingModel.textContent = `${prediction.modelId}${version}`;
    item.dataset.predictionId = prediction.id;
    item.dataset.modelId = prediction.modelId;
    const actions = item.querySelector('.actions');
    actions.hidden = false;
    actions.querySelector('.confirm').addEventListener('click', () => sendValidation(prediction, prediction.label, item));
    for (const button of actions.querySelectorAll('button[data-label]')) {
      button.addEventListener('click', () => sendValidation(prediction, button.dataset.label, item));
    }
  }

  function card(file) {
    const item = template.content.firstElementChild.cloneNode(true);
    const thumb = item.querySelector('.thumb');
    thumb.src = URL.createObjectURL(file);
    // The file name is the text beside it; a name is no description of the photo (WCAG failure F30).
    thumb.alt = 'photo being classified';
    item.querySelector('.file-name').textContent = file.name;
    return item;
  }

  async function classify(file, item) {
    const progress = item.querySelector('.upload-progress');
    try {
      showPrediction(item, await upload(file, (fraction) => (progress.value = Math.round(fraction * 100))));
    } catch (error) {
      progress.hidden = true;
      item.querySelector('.error').textContent = error.message;
    }
  }

  // The newest selection goes on top, its photos in the order they were chosen.
  async function classifyAll(files) {
    const items = files.map(card);
    const batch = document.createDocumentFragment();
    batch.append(...items);
    results.prepend(batch);
    for (const [i, file] of files.entries()) await classify(file, items[i]);
  }

  input.addEventListener('change', () => {
    classifyAll([...input.files]);
    input.value = '';
  });
  dropzone.addEventListener('dragover', (event) => {
    event.preventDefault();
    dropzone.classList.add('over');
  });
  dropzone.addEventListener('dragleave', () => dropzone.classList.remove('over'));
  dropzone.addEventListener('drop', (event) => {
    event.preventDefault();
    dropzone.classList.remove('over');
    classifyAll([...event.dataTransfer.files]);
  });
  // Photos from elsewhere on the page (camera.js): classified like an upload; the sender may await `classified`.
  document.addEventListener('catdog:classify-photo', (event) => {
    event.detail.classified = classifyAll([event.detail.file]);
  });
})();
