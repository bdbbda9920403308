import assert from 'node:assert/strict';
import { test } from 'node:test';
import { groupScope, scopeFromText } from '../src/cli/commands/role.js';

/**
 * `latchkey role assignment create|list|delete` and `ad sp create-for-rbac --scopes` build the
 * request path from the scope the user gives. A `.` or `..` segment would be resolved by the URL
 * parser to the parent (as `federated-credential delete --federated-credential-id ..` did before
 * src/cli/path.ts): `-g ..` sent `PUT /subscriptions/S/providers/Microsoft.Authorization/roleAssignments/…`,
 * a role at the whole subscription instead of a resource group.
 */
test('a role scope with a dot-segment is a usage error, not the parent scope', () => {
  const sub = '00000000-0000-0000-0000-000000000001';
  // What the old code sent for `-g ..`: the URL parser makes it the subscription's assignment.
  const resolved = new URL(
    `https://x/subscriptions/${sub}/resourceGroups/../providers/Microsoft.Authorization/roleAssignments/r`,
  ).pathname;
  assert.equal(resolved, `/subscriptions/${sub}/providers/Microsoft.Authorization/roleAssignments/r`);
  for (const rg of ['..', '.'])
    assert.throws(() => groupScope(sub, rg), /cannot be a name or id/, `-g ${rg}`);
  // `-g %2e%2e` is encoded (%252e%252e): a resource group of that name, never the parent.
  assert.equal(groupScope(sub, '%2e%2e'), `/subscriptions/${sub}/resourceGroups/%252e%252e`);
  for (const scope of [
    `/subscriptions/${sub}/resourceGroups/rg/..`,
    `/subscriptions/${sub}/resourceGroups/../`,
    `subscriptions/${sub}/./resourceGroups/rg`,
    `/subscriptions/${sub}/resourceGroups/%2E%2e`,
  ])
    assert.throws(() => scopeFromText(scope), /cannot be a name or id/, `--scope ${scope}`);
  // A name with a slash stays one segment (encoded), never a path of its own.
  assert.equal(groupScope(sub, 'a/../..'), `/subscriptions/${sub}/resourceGroups/a%2F..%2F..`);
  // Ordinary scopes are unchanged.
  assert.equal(scopeFromText('/'), '/');
  assert.equal(
    scopeFromText(`/subscriptions/${sub}/resourceGroups/rg-1/providers/Microsoft.KeyVault/vaults/v.1/`),
    `/subscriptions/${sub}/resourceGroups/rg-1/providers/Microsoft.KeyVault/vaults/v.1`,
  );
  assert.equal(groupScope(sub, 'my_rg(1)'), `/subscriptions/${sub}/resourceGroups/my_rg(1)`);
  assert.equal(groupScope(sub, undefined), `/subscriptions/${sub}`);
});
