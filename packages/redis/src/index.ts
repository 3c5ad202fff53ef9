export {
  type FanoutStats,
  PublishError,
  type PublishReport,
  RedisFanout,
  type RedisFanoutOptions,
  redisFanout,
} from './fanout.js';
export type { RedisClientTemplate } from './link.js';
export { NotConnectedError } from './link.js';
export { createPublisher, type Publisher, type PublisherOptions } from './publisher.js';
