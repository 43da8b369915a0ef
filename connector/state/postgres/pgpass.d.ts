// The pgpass module (pg's own lookup of PGPASSFILE / ~/.pgpass) ships no types.
declare module 'pgpass' {
  namespace pgpass {
    interface ConnectionInfo { host?: string | undefined; port?: number | string | undefined; database?: string | undefined; user?: string | undefined }
  }
  function pgpass(connection: pgpass.ConnectionInfo, callback: (password: string | undefined) => void): void;
  export default pgpass;
}
