CREATE TABLE `plugin_instances` (
	`org_id` text NOT NULL,
	`plugin_id` text NOT NULL,
	`enabled` integer DEFAULT false NOT NULL,
	`config` text DEFAULT '{}' NOT NULL,
	`auth_state` text,
	`runtime_state` text DEFAULT 'stopped' NOT NULL,
	`sdk_version` text,
	`last_error` text,
	`last_started_at` integer,
	`last_activity_at` integer,
	`owner_gateway_id` text,
	`port` integer,
	`pid` integer,
	`restarts` integer DEFAULT 0 NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`org_id`, `plugin_id`)
);
--> statement-breakpoint
CREATE TABLE `plugins` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`version` text NOT NULL,
	`path` text NOT NULL,
	`manifest` text NOT NULL,
	`sdk_version` text NOT NULL,
	`checksum` text NOT NULL,
	`metadata` text,
	`metadata_state` text DEFAULT 'missing' NOT NULL,
	`metadata_fetched_at` integer,
	`metadata_error` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
