// Predict page, camera panel: a frame of the phone's or laptop's camera becomes a JPEG file that predict.js
// classifies exactly like an upload (the "catdog:classify-photo" event). Live mode takes the next photo only once the
// previous one is classified, so a slow server never gets a queue of frames.
(() => {
  const video = document.getElementById('camera-video');
  const status = document.getElementById('camera-status');
  const startButton = document.getElementById('camera-start');
  const captureButton = document.getElementById('camera-capture');
  const liveButton = document.getElementById('camera-live');
  const stopButton = document.getElementById('camera-stop');
  const interval = document.getElementById('camera-interval');
  // Bigger frames only cost upload time: the model sees a few hundred pixels a side.
  const MAX_SIDE = 1024;
  const JPEG_QUALITY = 0.9;

  let stream = null;
  let liveTimer = null;
  let live = false;

  const say = (text) => (status.textContent = text);

  function cameraProblem(error) {
    switch (error.name) {
      case 'NotAllowedError':
      case 'SecurityError':
        return 'The camera is blocked: allow it for this site in the browser (address bar, site settings), or upload photos above.';
      case 'NotFoundError':
      case 'OverconstrainedError':
        return 'No camera found on this device: upload photos above instead.';
      case 'NotReadableError':
        return 'The camera is in use by another application: close it and start the camera again.';
      default:
        return `The camera could not start (${error.message || error.name}): upload photos above instead.`;
    }
  }

  function setRunning(running) {
    startButton.disabled = running;
    captureButton.disabled = !running;
    liveButton.disabled = !running;
    stopButton.disabled = !running;
    video.hidden = !running;
  }

  async function start() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      say('This page cannot use a camera here: browsers allow it only over https or on localhost.');
      return;
    }
    say('Starting the camera…');
    try {
      // The back camera on a phone: it is the one that points at the pet.
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: { ideal: 'environment' } }, audio: false });
    } catch (error) {
      say(cameraProblem(error));
      return;
    }
    video.srcObject = stream;
    setRunning(true);
    try {
      await video.play();
    } catch (error) {
      stop();
      say(cameraProblem(error));
      return;
    }
    say('Camera on.');
  }

  function frameAsJpeg() {
    const scale = Math.min(1, MAX_SIDE / Math.max(video.videoWidth, video.videoHeight));
    const canvas = document.createElement('canvas');
    canvas.width = Math.round(video.videoWidth * scale);
    canvas.height = Math.round(video.videoHeight * scale);
    canvas.getContext('2d').drawImage(video, 0, 0, canvas.width, canvas.height);
    return new Promise((resolve, reject) =>
      canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error('the camera gave no picture'))), 'image/jpeg', JPEG_QUALITY),
    );
  }

  async function capture() {
    if (!stream || video.videoWidth === 0) return;
    const blob = await frameAsJpeg();
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const file = new File([blob], `camera-${stamp}.jpg`, { type: 'image/jpeg' });
    const detail = { file, classified: null };
    document.dispatchEvent(new CustomEvent('catdog:classify-photo', { detail }));
    await detail.classified;
  }

  function setLive(on) {
    live = on;
    liveButton.setAttribute('aria-pressed', String(on));
    liveButton.textContent = on ? 'Stop live' : 'Classify live';
    clearTimeout(liveTimer);
    if (on) liveStep();
  }

  async function liveStep() {
    try {
      await capture();
    } catch (error) {
      say(error.message);
    }
    if (live) liveTimer = setTimeout(liveStep, Number(interval.value));
  }

  function stop() {
    setLive(false);
    if (stream) for (const track of stream.getTracks()) track.stop();
    stream = null;
    video.srcObject = null;
    setRunning(false);
    say('Camera off.');
  }

  startButton.addEventListener('click', start);
  captureButton.addEventListener('click', () => capture().catch((error) => say(error.message)));
  liveButton.addEventListener('click', () => setLive(!live));
  stopButton.addEventListener('click', stop);
  // A hidden tab keeps no camera open (and takes no photos nobody sees).
  document.addEventListener('visibilitychange', () => {
    if (document.hidden && stream) stop();
  });
})();
