import type { UpExtension } from './up.js';

/** `latchkey up` component: runs the registered background jobs (purge, ...) until shutdown. */
export const backgroundJobs: UpExtension = async ({ services, logger }) => {
  const running = services.jobs.start({
    onError: (job, err) => logger.error({ err, job }, 'background job failed'),
    onRun: (job, result, ms) => services.metrics.job(job, result, ms),
  });
  return { close: () => running.close() };
};
