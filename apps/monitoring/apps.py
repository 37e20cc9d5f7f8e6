from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "apps.monitoring"
    verbose_name = "Monitoring"
    nav = [(10, "Monitoring", "monitoring:overview", "core.run_read_ops")]
    role_permissions = {"operator": ["monitoring.change_dashboard"], "admin": ["monitoring.change_dashboard"]}

    def ready(self):
        from celery.signals import task_postrun, worker_process_shutdown
        from django.core.signals import request_finished

        from apps.core.live import register_topic

        from .metrics import forget_process, record_breaker_states

        register_topic("dashboard", "core.run_read_ops")
        # Keep each process's breaker states current in the shared metric files.
        request_finished.connect(record_breaker_states, dispatch_uid="monitoring.breakers.request")
        task_postrun.connect(record_breaker_states, dispatch_uid="monitoring.breakers.task", weak=False)
        worker_process_shutdown.connect(forget_process, dispatch_uid="monitoring.metrics.shutdown", weak=False)

    def console_processes(self, data_dir, env) -> dict[str, str]:
        """A local Prometheus (scraping this console) and Alertmanager for `bin/console`.

        runconsole calls this once before it starts the processes: the moment to
        empty the metric files of the previous run.
        """
        from .local import clear_metric_files, local_peer_commands

        clear_metric_files()
        return local_peer_commands(data_dir, env)
