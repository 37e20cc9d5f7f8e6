// A real OpenID provider for the SSO tests: node-oidc-provider with its development login form.
// argv: <port> <clients.json> <accounts.json>. The accounts file is read on every lookup, so a
// test changes someone's groups at the provider by rewriting it (login name -> claims).
import { readFileSync } from "node:fs";
import Provider from "oidc-provider";

const [port, clientsFile, accountsFile] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: JSON.parse(readFileSync(clientsFile, "utf8")),
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name", "preferred_username", "groups"] },
  async findAccount(ctx, id) {
    const accounts = JSON.parse(readFileSync(accountsFile, "utf8"));
    const account = accounts[id];
    if (!account) return undefined;
    return { accountId: id, async claims() { return { sub: account.sub ?? id, ...account }; } };
  },
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  pkce: { required: () => true },
});
provider.listen(Number(port), "127.0.0.1", () => console.log(`oidc-provider listening on ${issuer}`));
