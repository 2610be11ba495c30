import type { ServerDeps } from '../../server/context.js';
import { html } from '../html.js';
import { gate, page } from '../layout.js';
import type { WebUser } from '../user.js';
import { cameraSection } from './camera.js';
import { servingLabel } from './shared.js';

export async function predictPage(deps: ServerDeps, user: WebUser) {
  // Anyone who may predict sees the verdict; confirming or correcting it changes the data set (curator).
  const validate = gate(user, 'POST', '/api/v1/predictions/{id}/validation');
  return page({
    title: 'Cat or dog?',
    path: '/',
    scripts: ['predict.js', 'camera.js'],
    user,
    body: html`
<section class="card">
  <div id="dropzone" class="dropzone">
    <p><strong>Drop photos here</strong></p>
    <p id="drop-help" class="muted">or <label class="file-label">choose photos<input id="file-input" type="file" accept="image/*" multiple></label> — JPEG, PNG, WebP, GIF or AVIF</p>
  </div>
  <p class="muted">Serving: <strong id="serving-model">${await servingLabel(deps)}</strong></p>
</section>
${cameraSection()}
<ul id="results" class="results" aria-live="polite"></ul>
<template id="result-template">
  <li class="result card">
    <img class="thumb" alt="">
    <div class="result-body">
      <p class="file-name"></p>
      <progress class="upload-progress" max="100" value="0"></progress>
      <p class="verdict"></p>
      <div class="confidence"><div class="confidence-fill"></div></div>
      <p class="model muted"></p>
      <p class="error"></p>
      <div class="actions" hidden>
        <button type="button" class="confirm"${validate.attributes}>Confirm</button>
        <span class="muted">Correct:</span>
        <button type="button" data-label="cat"${validate.attributes}>Cat</button>
        <button type="button" data-label="dog"${validate.attributes}>Dog</button>
        <button type="button" data-label="neither"${validate.attributes}>Neither</button>${validate.hint}
      </div>
      <p class="feedback muted"></p>
    </div>
  </li>
</template>`,
  });
}
