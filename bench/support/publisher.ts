// Publishing syncs from a bench, as `tidepool sync` does: a confirm channel on a prefix's
// topology, one sync request per connection. Opening it declares the topology, which a KEDA
// trigger needs to find the queue.
import type { ConfirmChannel } from 'amqplib';
import type { Config } from '../../shared/config.js';
import type { Logger } from '../../shared/logger.js';
import { newSyncRequest, type SyncRequest } from '../../shared/messages.js';
import { connectBroker, openConfirmChannel } from '../../shared/broker/connection.js';
import { publishSync } from '../../shared/broker/publisher.js';
import { topologyFor, type Topology, type TopologySettings } from '../../shared/broker/topology.js';

export interface SyncPublisher {
  topology: Topology;
  channel: ConfirmChannel;
  /** Publishes one sync of `connectionId` and waits for the broker's confirm. */
  publish: (connectionId: string) => Promise<SyncRequest>;
  /** Closes the channel and the connection; never throws. */
  close: () => Promise<void>;
}

/** A publisher on `config`'s prefix, connected at `amqpUrl` (the bench's own address of the broker). */
export async function openSyncPublisher(amqpUrl: string, config: Pick<Config, 'prefix'> & TopologySettings, logger: Logger, requestedBy = 'bench'): Promise<SyncPublisher> {
  const topology = topologyFor(config.prefix, config);
  const broker = await connectBroker({ url: amqpUrl, logger, timeoutMs: 10_000, connectionName: `tidepool-${config.prefix}` });
  const channel = await openConfirmChannel(broker, topology, logger).catch(async (err: unknown) => {
    await broker.close().catch(() => undefined);
    throw err;
  });
  return {
    topology,
    channel,
    publish: async (connectionId) => {
      const request = newSyncRequest(connectionId, { requestedBy });
      await publishSync(channel, topology, request);
      return request;
    },
    close: async () => {
      await channel.close().catch(() => undefined);
      await broker.close().catch(() => undefined);
    },
  };
}
