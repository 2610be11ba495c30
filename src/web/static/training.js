// Training page: start a run, draw its curves live from the server-sent events (or the last run's after a reload),
// refresh the history when a run ends, compare two runs with their parameters.
(() => {
  const form = document.getElementById('train-form');
  const errorLine = document.getElementById('train-error');
  const status = document.getElementById('run-status');
  const progress = document.getElementById('run-progress');
  const live = document.getElementById('live');

  // Accuracy lives on 0–1 and is read against that scale; loss starts at 0 so curves of two runs are comparable.
  const lineChart = (canvas, title, quantity) =>
    new Chart(canvas, {
      type: 'line',
      data: { labels: [], datasets: [] },
      options: {
        animation: false,
        maintainAspectRatio: false,
        interaction: { mode: 'index', intersect: false },
        plugins: { title: { display: true, text: title }, legend: { position: 'bottom' } },
        scales: {
          x: { title: { display: true, text: 'epoch' } },
          y: quantity === 'accuracy'
            ? { min: 0, max: 1, title: { display: true, text: 'accuracy' }, ticks: { callback: (value) => `${Math.round(value * 100)}%` } }
            : { beginAtZero: true, title: { display: true, text: 'loss (cross-entropy)' } },
        },
      },
    });

  const series = (label, color, dashed) => ({ label, data: [], borderColor: color, backgroundColor: color, borderDash: dashed ? [6, 4] : [], tension: 0.2 });

  const lossChart = lineChart(document.getElementById('loss-chart'), 'loss', 'loss');
  const accuracyChart = lineChart(document.getElementById('accuracy-chart'), 'accuracy', 'accuracy');
  const compareAccuracyChart = lineChart(document.getElementById('compare-accuracy-chart'), 'validation accuracy', 'accuracy');
  const compareLossChart = lineChart(document.getElementById('compare-loss-chart'), 'validation loss', 'loss');

  function showProgress(done, total) {
    progress.hidden = !total;
    if (total) {
      progress.max = total;
      progress.value = Math.min(done, total);
    }
  }

  const refreshHistory = () => document.body.dispatchEvent(new Event('catdog:runs-changed'));

  function resetLive() {
    lossChart.data.labels = [];
    lossChart.data.datasets = [series('train loss', '#d9822b'), series('validation loss', '#2f6fde', true)];
    accuracyChart.data.labels = [];
    accuracyChart.data.datasets = [series('train accuracy', '#d9822b'), series('validation accuracy', '#2f6fde', true)];
    lossChart.update();
    accuracyChart.update();
  }

  function addEpoch(epoch) {
    const label = String(epoch.epoch);
    lossChart.data.labels.push(label);
    accuracyChart.data.labels.push(label);
    lossChart.data.datasets[0].data.push(epoch.loss);
    lossChart.data.datasets[1].data.push(epoch.valLoss);
    accuracyChart.data.datasets[0].data.push(epoch.accuracy);
    accuracyChart.data.datasets[1].data.push(epoch.valAccuracy);
    lossChart.update();
    accuracyChart.update();
  }

  const seconds = (ms) => (ms === null || ms === undefined ? '' : `, about ${Math.max(1, Math.round(ms / 1000))} s left`);

  // A succeeded run can still have produced a useless model (one class only): said in amber, not as a plain success.
  const warningText = (warnings) => (warnings ?? []).map((warning) => ` — ${warning.summary}`).join('');
  function showWarning(warnings) {
    const [warning] = warnings ?? [];
    status.classList.toggle('warning', Boolean(warning));
    if (warning) status.title = warning.reason;
    else status.removeAttribute('title');
  }

  let source;
  function follow(runId) {
    if (source) source.close();
    resetLive();
    live.dataset.followRun = runId;
    showWarning([]);
    status.textContent = `run ${runId}: queued`;
    source = new EventSource(`/api/v1/training-runs/${encodeURIComponent(runId)}/events`);
    source.addEventListener('started', () => {
      status.textContent = `run ${runId}: started`;
      refreshHistory(); // its row said queued
    });
    // A run on the job queue reports how far the whole run is, within each epoch too; the bar follows that alone.
    let runFraction = false;
    source.addEventListener('stage', (event) => {
      const stage = JSON.parse(event.data);
      // The worker reports what it does ("epoch 1 of 3: batch 4 of 10") and how far the whole run is (fraction of 1).
      status.textContent = `run ${runId}: ${stage.stage}`;
      runFraction = typeof stage.fraction === 'number';
      showProgress(stage.fraction ?? 0, 1);
    });
    source.addEventListener('epoch', (event) => {
      const epoch = JSON.parse(event.data);
      addEpoch(epoch);
      const total = epoch.totalEpochs ? `/${epoch.totalEpochs}` : '';
      status.textContent = `run ${runId}: epoch ${epoch.epoch}${total}, validation accuracy ${(epoch.valAccuracy * 100).toFixed(1)}%${seconds(epoch.etaMs)}`;
      if (!runFraction) showProgress(epoch.epoch, epoch.totalEpochs);
    });
    source.addEventListener('finished', (event) => {
      const finished = JSON.parse(event.data);
      const accuracy = finished.metrics && typeof finished.metrics.accuracy === 'number' ? ` test accuracy ${(finished.metrics.accuracy * 100).toFixed(1)}%;` : '';
      const promoted = finished.promoted === undefined ? '' : finished.promoted ? ' promoted' : ` not promoted${finished.promotion ? ` (${finished.promotion})` : ''}`;
      status.textContent = `run ${runId}: finished —${accuracy} model ${finished.modelId}${promoted}${warningText(finished.warnings)}`;
      showWarning(finished.warnings);
      status.dataset.finishedModel = finished.modelId;
      showProgress(0, 0);
      source.close();
      refreshHistory();
    });
    source.addEventListener('failed', (event) => {
      status.textContent = `run ${runId}: failed — ${JSON.parse(event.data).error}`;
      showProgress(0, 0);
      source.close();
      refreshHistory();
    });
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    errorLine.hidden = true;
    const fields = new FormData(form);
    const request = {};
    for (const name of ['datasetId', 'epochs', 'learningRate', 'batchSize', 'imageSize']) {
      const value = String(fields.get(name) ?? '').trim();
      if (value !== '') request[name] = Number(value);
    }
    request.architecture = fields.get('architecture');
    const response = await fetch('/api/v1/training-runs', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(request) });
    const body = await response.json();
    if (response.status !== 202) {
      errorLine.textContent = body.error.message;
      errorLine.hidden = false;
      return;
    }
    follow(body.id);
    refreshHistory(); // the queued run joins the history at once
  });

  // After a reload with nothing running, the last run's curves are drawn again from its stored epochs.
  async function showLastRun(runId) {
    const response = await fetch(`/api/v1/training-runs/${encodeURIComponent(runId)}`);
    if (!response.ok) return;
    const run = await response.json();
    resetLive();
    for (const epoch of run.epochs) addEpoch(epoch);
    const accuracy = run.metrics && typeof run.metrics.accuracy === 'number' ? `, test accuracy ${(run.metrics.accuracy * 100).toFixed(1)}%` : '';
    status.textContent = `last run ${run.id}: ${run.status}${warningText(run.warnings)}${accuracy}`;
    showWarning(run.warnings);
  }

  const PARAMETERS = ['datasetId', 'architecture', 'epochs', 'learningRate', 'batchSize', 'head', 'imageSize', 'seed'];
  function parameterTable(runs) {
    const table = document.getElementById('compare-params');
    table.replaceChildren();
    const head = table.createTHead().insertRow();
    for (const text of ['parameter', ...runs.map((run) => run.id)]) head.appendChild(document.createElement('th')).textContent = text;
    const body = table.createTBody();
    for (const name of PARAMETERS) {
      const values = runs.map((run) => (name === 'datasetId' ? `v${run.datasetId}` : run.params[name]));
      if (values.every((value) => value === undefined)) continue;
      const row = body.insertRow();
      if (values.some((value) => String(value) !== String(values[0]))) row.className = 'differs';
      row.insertCell().textContent = name;
      for (const value of values) row.insertCell().textContent = value === undefined ? '–' : String(value);
    }
    table.hidden = false;
  }

  document.getElementById('compare-button').addEventListener('click', async () => {
    const compareStatus = document.getElementById('compare-status');
    const chosen = [...document.querySelectorAll('input[name="compare"]:checked')].map((box) => box.value);
    if (chosen.length !== 2) {
      compareStatus.textContent = 'select exactly two runs';
      return;
    }
    const runs = await Promise.all(chosen.map((id) => fetch(`/api/v1/training-runs/${encodeURIComponent(id)}`).then((response) => response.json())));
    const colors = ['#2f6fde', '#d9822b'];
    const labels = Array.from({ length: Math.max(...runs.map((run) => run.epochs.length)) }, (_, i) => String(i + 1));
    const describe = (run) => `${run.id} (${run.params.architecture ?? '?'}, lr ${run.params.learningRate ?? '?'})`;
    compareAccuracyChart.data.labels = labels;
    compareAccuracyChart.data.datasets = runs.map((run, i) => ({ ...series(describe(run), colors[i]), data: run.epochs.map((epoch) => epoch.valAccuracy) }));
    compareLossChart.data.labels = labels;
    compareLossChart.data.datasets = runs.map((run, i) => ({ ...series(describe(run), colors[i]), data: run.epochs.map((epoch) => epoch.valLoss) }));
    compareAccuracyChart.update();
    compareLossChart.update();
    parameterTable(runs);
    compareStatus.textContent = `comparing ${chosen.join(' and ')}; parameters that differ are highlighted`;
  });

  resetLive();
  if (live.dataset.followRun) follow(live.dataset.followRun);
  else if (live.dataset.lastRun) showLastRun(live.dataset.lastRun);
})();
