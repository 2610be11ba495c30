// Training page: start a run, draw its curves live from the server-sent events, compare two finished runs.
(() => {
  const form = document.getElementById('train-form');
  const errorLine = document.getElementById('train-error');
  const status = document.getElementById('run-status');
  const live = document.getElementById('live');

  const lineChart = (canvas, title) =>
    new Chart(canvas, {
      type: 'line',
      data: { labels: [], datasets: [] },
      options: {
        animation: false,
        maintainAspectRatio: false,
        plugins: { title: { display: true, text: title } },
        scales: { x: { title: { display: true, text: 'epoch' } } },
      },
    });

  const series = (label, color, dashed) => ({ label, data: [], borderColor: color, backgroundColor: color, borderDash: dashed ? [6, 4] : [], tension: 0.2 });

  const lossChart = lineChart(document.getElementById('loss-chart'), 'loss');
  const accuracyChart = lineChart(document.getElementById('accuracy-chart'), 'accuracy');
  const compareChart = lineChart(document.getElementById('compare-chart'), 'validation accuracy (solid) and loss (dashed)');

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

  let source;
  function follow(runId) {
    if (source) source.close();
    resetLive();
    live.dataset.followRun = runId;
    status.textContent = `run ${runId}: queued`;
    source = new EventSource(`/api/v1/training-runs/${encodeURIComponent(runId)}/events`);
    source.addEventListener('started', () => (status.textContent = `run ${runId}: started`));
    source.addEventListener('stage', (event) => {
      const stage = JSON.parse(event.data);
      const count = stage.total ? ` ${stage.done ?? 0}/${stage.total}` : '';
      status.textContent = `run ${runId}: ${stage.stage}${count}`;
    });
    source.addEventListener('epoch', (event) => {
      const epoch = JSON.parse(event.data);
      addEpoch(epoch);
      const total = epoch.totalEpochs ? `/${epoch.totalEpochs}` : '';
      status.textContent = `run ${runId}: epoch ${epoch.epoch}${total}, validation accuracy ${(epoch.valAccuracy * 100).toFixed(1)}%${seconds(epoch.etaMs)}`;
    });
    source.addEventListener('finished', (event) => {
      const finished = JSON.parse(event.data);
      const accuracy = finished.metrics && typeof finished.metrics.accuracy === 'number' ? ` test accuracy ${(finished.metrics.accuracy * 100).toFixed(1)}%;` : '';
      const promoted = finished.promoted === undefined ? '' : finished.promoted ? ' promoted' : ' not promoted';
      status.textContent = `run ${runId}: finished —${accuracy} model ${finished.modelId}${promoted}`;
      status.dataset.finishedModel = finished.modelId;
      source.close();
    });
    source.addEventListener('failed', (event) => {
      status.textContent = `run ${runId}: failed — ${JSON.parse(event.data).error}`;
      source.close();
    });
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    errorLine.hidden = true;
    const fields = new FormData(form);
    const request = {};
    for (const name of ['datasetId', 'epochs', 'learningRate', 'batchSize']) {
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
  });

  document.getElementById('compare-button').addEventListener('click', async () => {
    const compareStatus = document.getElementById('compare-status');
    const chosen = [...document.querySelectorAll('input[name="compare"]:checked')].map((box) => box.value);
    if (chosen.length !== 2) {
      compareStatus.textContent = 'select exactly two runs';
      return;
    }
    const runs = await Promise.all(chosen.map((id) => fetch(`/api/v1/training-runs/${encodeURIComponent(id)}`).then((response) => response.json())));
    const colors = ['#2f6fde', '#d9822b'];
    const longest = Math.max(...runs.map((run) => run.epochs.length));
    compareChart.data.labels = Array.from({ length: longest }, (_, i) => String(i + 1));
    compareChart.data.datasets = runs.flatMap((run, i) => [
      { ...series(`${run.id} validation accuracy`, colors[i]), data: run.epochs.map((epoch) => epoch.valAccuracy) },
      { ...series(`${run.id} validation loss`, colors[i], true), data: run.epochs.map((epoch) => epoch.valLoss) },
    ]);
    compareChart.update();
    compareStatus.textContent = `comparing ${chosen.join(' and ')}`;
  });

  resetLive();
  if (live.dataset.followRun) follow(live.dataset.followRun);
})();
