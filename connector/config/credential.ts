/** How a tenant's app proves itself to Entra ID: its client secret, or a certificate (PEM with the private key). */
export type ClientCredential =
  | { readonly kind: 'secret'; readonly secret: string }
  | { readonly kind: 'certificate'; readonly path: string };
