/**
 * What the rows of ARM-shaped resources (apps, hosts, user-assigned identities; migration 0005)
 * have in common: where the resource is (tenant, subscription, resource group) and its name.
 * Each store names its own row id and the rest of its columns.
 */
export interface ResourceRow {
  id: string;
  tenant_id: string;
  subscription_id: string;
  resource_group: string;
  name: string;
  created_at: number;
}

/** Those columns as the stores return them (camelCase; the row id and `createdAt` are each store's own). */
export interface StoredPlacement {
  tenantId: string;
  subscriptionId: string;
  resourceGroup: string;
  name: string;
}

export const placementOf = (r: ResourceRow): StoredPlacement => ({
  tenantId: r.tenant_id,
  subscriptionId: r.subscription_id,
  resourceGroup: r.resource_group,
  name: r.name,
});

/**
 * The insert values of a resource's placement as the apps and user_identities columns
 * `tenant_id, subscription_id, resource_group, resource_group_lower, name, name_lower` take them.
 */
export const placementValues = (p: StoredPlacement): string[] => [
  p.tenantId,
  p.subscriptionId,
  p.resourceGroup,
  p.resourceGroup.toLowerCase(),
  p.name,
  p.name.toLowerCase(),
];
