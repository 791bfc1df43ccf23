import type { AgentJobSpec } from './agent-host.js';
import { AgentHost } from './agent-host.js';
export class SlurmStep {
  constructor(readonly o: { nodes: string[]; remoteNode: string; remotePrefix: string | null }) {}
  host(node: string, job: AgentJobSpec): AgentHost {
    void node; void job;
    throw new Error('todo');
  }
}
