import { createRoute, z } from '@hono/zod-openapi';
import { createToken, revokeToken, ROLES } from '../../auth/index.js';
import type { TokenRow } from '../../db/index.js';
import { routeGroup, type ServerDeps } from '../context.js';
import { errorResponse, jsonContent } from '../schemas.js';

const TokenSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    role: z.enum(ROLES),
    createdAt: z.string(),
    lastUsedAt: z.string().nullable().openapi({ description: 'Within a minute.' }),
    revokedAt: z.string().nullable(),
  })
  .openapi('Token');

const present = (token: TokenRow) => ({ ...token, role: token.role as z.infer<typeof TokenSchema>['role'] });

const listTokens = createRoute({
  method: 'get',
  path: '/tokens',
  'x-catdog-role': 'admin',
  tags: ['access'],
  summary: 'API tokens, revoked ones included (secrets are never shown again)',
  responses: { 200: jsonContent(z.object({ items: z.array(TokenSchema) }), 'Every token') },
});

const issueToken = createRoute({
  method: 'post',
  path: '/tokens',
  'x-catdog-role': 'admin',
  tags: ['access'],
  summary: 'Create a token; its secret is in this answer only',
  request: {
    body: {
      required: true,
      content: { 'application/json': { schema: z.object({ role: z.enum(ROLES), name: z.string().trim().min(1).max(200).optional() }) } },
    },
  },
  responses: {
    201: jsonContent(TokenSchema.extend({ secret: z.string().openapi({ description: 'Send as "Authorization: Bearer <secret>".' }) }), 'The new token'),
    400: errorResponse('Unknown role'),
  },
});

const revoke = createRoute({
  method: 'delete',
  path: '/tokens/{id}',
  'x-catdog-role': 'admin',
  tags: ['access'],
  summary: 'Revoke a token at once (its web sessions end with it)',
  request: { params: z.object({ id: z.string().min(1).openapi({ param: { name: 'id', in: 'path' }, example: 'tok_0123456789abcdef' }) }) },
  responses: { 204: { description: 'Revoked' }, 404: errorResponse('No such live token') },
});

export function tokenRoutes({ app }: ServerDeps) {
  const routes = routeGroup();
  routes.openapi(listTokens, async (c) => c.json({ items: (await app.db.tokens.list()).map(present) }, 200));
  routes.openapi(issueToken, async (c) => {
    const { role, name } = c.req.valid('json');
    const { token, secret } = await createToken(app.db, role, name);
    return c.json({ ...present(token), secret }, 201);
  });
  routes.openapi(revoke, async (c) => {
    await revokeToken(app.db, c.req.valid('param').id);
    return c.body(null, 204);
  });
  return routes;
}
