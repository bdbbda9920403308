import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { ManifestDeps } from '../../provisioning/manifest-refs.js';
import type { Services } from '../../server/services.js';
import type { Authenticate } from '../auth.js';
import { requestMeta } from '../request.js';
import { parse } from '../validate.js';

const applyQuery = z.object({ dryRun: z.enum(['true', 'false']).optional() });
const exportQuery = z.object({
  resourceGroup: z.string().min(1).max(90).optional(),
  secretValues: z.enum(['generate', 'env']).optional(),
  /** `true`: `{ manifest, skipped }` (what the caller may not read) instead of the manifest alone. */
  report: z.enum(['true', 'false']).optional(),
});

/** Provisioning manifests: `POST /api/provisioning/apply[?dryRun=true]`, `GET /api/provisioning/export`. */
export async function manifestRoutes(
  app: FastifyInstance,
  opts: { services: ManifestDeps & Pick<Services, 'config'>; authenticate: Authenticate },
) {
  const s = opts.services;
  const caller = (req: FastifyRequest) => opts.authenticate(req, [s.config.managementResource]);

  app.post('/api/provisioning/apply', { bodyLimit: 4 * 1024 * 1024 }, async (req) => {
    const c = await caller(req);
    const q = parse(applyQuery, req.query, 'query');
    // Imported on first use (~10 modules a start does not need: docs/performance.md, cold start).
    const { applyManifest } = await import('../../provisioning/manifest-apply.js');
    return applyManifest(s, c, requestMeta(req), req.body, { dryRun: q.dryRun === 'true' });
  });
  app.get('/api/provisioning/export', async (req, reply) => {
    const c = await caller(req);
    const q = parse(exportQuery, req.query, 'query');
    reply.header('cache-control', 'no-store');
    const { exportManifestReport } = await import('../../provisioning/manifest-export.js');
    const r = await exportManifestReport(s, c, requestMeta(req), {
      ...(q.resourceGroup ? { resourceGroup: q.resourceGroup } : {}),
      ...(q.secretValues ? { secretValues: q.secretValues } : {}),
    });
    return q.report === 'true' ? r : r.manifest;
  });
}
