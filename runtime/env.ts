/** The environment variables a launched rank reads: what a launcher sets. */
export const ENV = {
  control: 'TSMPI_CONTROL',
  rank: 'TSMPI_RANK',
  size: 'TSMPI_SIZE',
  secret: 'TSMPI_SECRET',
  listen: 'TSMPI_LISTEN',
  host: 'TSMPI_HOST',
  /** identifies the machine: ranks with the same id use local sockets between them */
  hostId: 'TSMPI_HOST_ID',
  /** `tls:IP:0` when the job spans hosts: where this rank accepts peers from other hosts */
  listenTls: 'TSMPI_LISTEN_TLS',
  /** folder holding the job credential (job.key, job.crt) for cross-host links */
  tlsDir: 'TSMPI_TLS_DIR',
  initTimeout: 'TSMPI_INIT_TIMEOUT',
} as const;
