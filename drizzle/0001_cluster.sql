CREATE TABLE `gateways` (
	`id` text PRIMARY KEY NOT NULL,
	`address` text NOT NULL,
	`started_at` integer NOT NULL,
	`heartbeat_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `worker_leases` (
	`org_id` text NOT NULL,
	`plugin_id` text NOT NULL,
	`owner_gateway_id` text NOT NULL,
	`generation` integer NOT NULL,
	`expires_at` integer NOT NULL,
	PRIMARY KEY(`org_id`, `plugin_id`)
);
