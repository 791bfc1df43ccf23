// Slurm allocations: hostlist and tasks-per-node expansion into HostSpecs.
import { describe, expect, it } from 'vitest';
import { DEFAULT_PORT } from '../launcher/hostlist/hosts.js';
import { expandHostlist, expandTasksPerNode, slurmHosts } from '../launcher/hostlist/slurm.js';
import { isTsmpiError } from '../runtime/errors.js';

function expectArg(fn: () => unknown, text?: string): void {
  try {
    fn();
  } catch (e) {
    expect(isTsmpiError(e, 'ERR_ARG'), String(e)).toBe(true);
    if (text) expect((e as Error).message).toContain(text);
    return;
  }
  throw new Error('expected ERR_ARG, nothing was thrown');
}

describe('expandHostlist', () => {
  it.each([
    ['node1', ['node1']],
    ['node[01-03,07],gpu-a,rack[1-2]-n[1-2]', ['node01', 'node02', 'node03', 'node07', 'gpu-a', 'rack1-n1', 'rack1-n2', 'rack2-n1', 'rack2-n2']],
    ['n[8-11]', ['n8', 'n9', 'n10', 'n11']],
    ['n[098-101]', ['n098', 'n099', 'n100', 'n101']],
    ['a,b.example.org,c', ['a', 'b.example.org', 'c']],
    ['[1-2]x', ['1x', '2x']],
    ['cn[5]', ['cn5']],
    ['x[1-2]y[03-04]z', ['x1y03z', 'x1y04z', 'x2y03z', 'x2y04z']],
  ])('%s', (text, names) => {
    expect(expandHostlist(text)).toEqual(names);
  });

  it.each(['n[1-', 'n]1[', 'n[[1]]', 'n[a-b]', 'n[3-1]', 'n[]', 'a,,b', 'a b', 'n[0-99999999]', 'n[1-400]m[1-400]'])('refuses %s', (text) => {
    expectArg(() => expandHostlist(text), 'SLURM_JOB_NODELIST');
  });
});

describe('expandTasksPerNode', () => {
  it('expands counts and (xN) repeats', () => {
    expect(expandTasksPerNode('2(x3),1')).toEqual([2, 2, 2, 1]);
    expect(expandTasksPerNode('16')).toEqual([16]);
    expect(expandTasksPerNode('1,4(x2)')).toEqual([1, 4, 4]);
  });
  it.each(['', 'x', '2(3)', '2(x0)', '2(x)', '-1', '2(x3)1'])('refuses %j', (text) => {
    expectArg(() => expandTasksPerNode(text), 'SLURM_TASKS_PER_NODE');
  });
});

describe('slurmHosts', () => {
  it('is null outside Slurm', () => {
    expect(slurmHosts({})).toBeNull();
    expect(slurmHosts({ SLURM_TASKS_PER_NODE: '2', SLURM_JOB_NODELIST: '' })).toBeNull();
  });

  it('gives each node its tasks as slots, on the default port', () => {
    const hosts = slurmHosts({ SLURM_JOB_NODELIST: 'node[01-03],gpu-a', SLURM_TASKS_PER_NODE: '2(x3),1', SLURM_JOB_CPUS_PER_NODE: '8(x4)' });
    expect(hosts).toEqual([
      { name: 'node01', slots: 2, maxSlots: null, port: DEFAULT_PORT },
      { name: 'node02', slots: 2, maxSlots: null, port: DEFAULT_PORT },
      { name: 'node03', slots: 2, maxSlots: null, port: DEFAULT_PORT },
      { name: 'gpu-a', slots: 1, maxSlots: null, port: DEFAULT_PORT },
    ]);
  });

  it('falls back to SLURM_JOB_CPUS_PER_NODE, then to unspecified slots', () => {
    expect(slurmHosts({ SLURM_JOB_NODELIST: 'a,b', SLURM_JOB_CPUS_PER_NODE: '4(x2)' })!.map((h) => h.slots)).toEqual([4, 4]);
    expect(slurmHosts({ SLURM_JOB_NODELIST: 'a,b' })!.map((h) => h.slots)).toEqual([null, null]);
  });

  it('leaves out nodes with 0 tasks', () => {
    expect(slurmHosts({ SLURM_JOB_NODELIST: 'a,b,c', SLURM_TASKS_PER_NODE: '1,0,3' })!.map((h) => h.name)).toEqual(['a', 'c']);
    expectArg(() => slurmHosts({ SLURM_JOB_NODELIST: 'a', SLURM_TASKS_PER_NODE: '0' }));
  });

  it('refuses a count that does not match the node list', () => {
    expectArg(() => slurmHosts({ SLURM_JOB_NODELIST: 'n[1-3]', SLURM_TASKS_PER_NODE: '2(x2)' }), 'SLURM_TASKS_PER_NODE');
    expectArg(() => slurmHosts({ SLURM_JOB_NODELIST: 'n[1-3', SLURM_TASKS_PER_NODE: '1' }), 'SLURM_JOB_NODELIST');
  });
});
