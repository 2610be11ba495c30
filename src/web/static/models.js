// Models page: the ROC curve of the selected model, computed by the server on its dataset's test split.
(() => {
  const canvas = document.getElementById('roc-chart');
  if (!canvas) return;
  const status = document.getElementById('roc-status');
  status.textContent = 'computing…';
  fetch(`/api/v1/models/${encodeURIComponent(canvas.dataset.modelId)}/roc`)
    .then(async (response) => {
      const body = await response.json();
      if (!response.ok) throw new Error(body.error.message);
      new Chart(canvas, {
        type: 'scatter',
        data: {
          datasets: [
            {
              label: `ROC (AUC ${body.rocAuc === null ? 'undefined' : body.rocAuc.toFixed(3)})`,
              data: body.points.map((point) => ({ x: point.falsePositiveRate, y: point.truePositiveRate })),
              showLine: true,
              borderColor: '#2f6fde',
              backgroundColor: '#2f6fde',
              pointRadius: 0,
            },
            { label: 'chance', data: [{ x: 0, y: 0 }, { x: 1, y: 1 }], showLine: true, borderColor: '#98a2b3', borderDash: [6, 4], pointRadius: 0 },
          ],
        },
        options: {
          animation: false,
          scales: {
            x: { min: 0, max: 1, title: { display: true, text: 'false positive rate (cats called dogs)' } },
            y: { min: 0, max: 1, title: { display: true, text: 'true positive rate (dogs found)' } },
          },
        },
      });
      status.textContent = `${body.points.length} thresholds on the test split of dataset v${body.datasetId}`;
    })
    .catch((error) => (status.textContent = error.message));
})();

// Reliability diagram: per confidence bin, how often the model is right; on the diagonal it means what it says.
(() => {
  const canvas = document.getElementById('reliability-chart');
  if (!canvas) return;
  const status = document.getElementById('reliability-status');
  fetch(`/api/v1/models/${encodeURIComponent(canvas.dataset.modelId)}/reliability`)
    .then(async (response) => {
      const body = await response.json();
      if (!response.ok) throw new Error(body.error.message);
      const bins = body.bins.filter((bin) => bin.count > 0);
      new Chart(canvas, {
        type: 'scatter',
        data: {
          datasets: [
            {
              label: 'accuracy per confidence bin',
              data: bins.map((bin) => ({ x: bin.confidence, y: bin.accuracy, count: bin.count })),
              borderColor: '#2f6fde',
              backgroundColor: '#2f6fde',
              showLine: true,
            },
            { label: 'perfect calibration', data: [{ x: 0.5, y: 0.5 }, { x: 1, y: 1 }], showLine: true, borderColor: '#98a2b3', borderDash: [6, 4], pointRadius: 0 },
          ],
        },
        options: {
          animation: false,
          scales: {
            x: { min: 0.5, max: 1, title: { display: true, text: 'confidence' } },
            y: { min: 0, max: 1, title: { display: true, text: 'accuracy' } },
          },
        },
      });
      const ece = body.eceTest === null ? 'not measured' : body.eceTest.toFixed(4);
      status.textContent = `test-split ECE ${ece}, temperature ${body.temperature.toFixed(2)}`;
    })
    .catch((error) => (status.textContent = error.message));
})();
