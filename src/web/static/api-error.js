// The message of a refused API call ({ error: { code, message } }), for the page scripts that call the JSON API.
window.catdogApiError = async (response) => {
  try {
    return (await response.json()).error.message;
  } catch {
    return `the server answered ${response.status}`;
  }
};
