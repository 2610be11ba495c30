import { html } from '../html.js';

/** Camera intervals a user picks for live classification, in milliseconds: one photo, one prediction each. */
const LIVE_INTERVALS_MS = [1000, 2000, 5000];
const DEFAULT_LIVE_INTERVAL_MS = 2000;

/**
 * The camera panel of the Predict page (static/camera.js drives it): photos taken from the phone's or laptop's camera
 * go to the same predictions API as uploads and show up as the same result cards.
 */
export const cameraSection = () => html`
<section class="card camera" aria-labelledby="camera-heading">
  <h2 id="camera-heading">Camera</h2>
  <p class="muted">Take a photo, or classify live: a photo every few seconds, each one a result below.</p>
  <div class="camera-controls">
    <button type="button" id="camera-start">Start camera</button>
    <button type="button" id="camera-capture" disabled>Take photo</button>
    <button type="button" id="camera-live" aria-pressed="false" disabled>Classify live</button>
    <label>every <select id="camera-interval">${LIVE_INTERVALS_MS.map(
      (ms) => html`<option value="${ms}"${ms === DEFAULT_LIVE_INTERVAL_MS ? html` selected` : ''}>${ms / 1000} s</option>`,
    )}</select></label>
    <button type="button" id="camera-stop" class="secondary" disabled>Stop camera</button>
  </div>
  <video id="camera-video" class="camera-video" playsinline muted hidden aria-label="Camera preview"></video>
  <p id="camera-status" class="muted" role="status"></p>
</section>`;
