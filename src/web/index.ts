import type { WebUi } from '../server/app.js';
import { signInPage } from './pages/signin.js';
import { webRoutes } from './routes.js';

/** The pages `catdog serve` hosts beside the API. */
export const webUi: WebUi = { routes: webRoutes, signInPage };
