import type { WebUi } from '../server/app.js';
import { notFoundPage } from './pages/shared.js';
import { signInPage } from './pages/signin.js';
import { webRoutes } from './routes.js';
import { webUser } from './user.js';

/** The pages `catdog serve` hosts beside the API. */
export const webUi: WebUi = {
  routes: webRoutes,
  signInPage,
  notFound: (deps) => (c) => c.html(notFoundPage(c.req.path, webUser(c, deps.access)).text, 404),
};
