"""Install the seed's `language-tutor` agent and a tool-using general assistant."""

from django.db import migrations

from conversations.seed_agents import SEED_AGENTS, install_seed_agents

def install(apps, schema_editor):
    install_seed_agents(apps.get_model("conversations", "Agent"))


def uninstall(apps, schema_editor):
    Agent = apps.get_model("conversations", "Agent")
    Agent.objects.filter(slug__in=[spec["slug"] for spec in SEED_AGENTS]).delete()


class Migration(migrations.Migration):
    dependencies = [("conversations", "0001_initial")]

    operations = [migrations.RunPython(install, uninstall)]
