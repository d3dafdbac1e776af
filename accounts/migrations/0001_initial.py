"""AccessToken, moved from the `api` app: its table (api_accesstoken) is the one that
app's 0001 created, so only Django's state changes here."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("api", "0002_accesstoken_moves_to_accounts"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AccessToken",
                    fields=[
                        (
                            "digest",
                            models.CharField(max_length=128, primary_key=True, serialize=False),
                        ),
                        ("token_key", models.CharField(db_index=True, max_length=25)),
                        ("created", models.DateTimeField(auto_now_add=True)),
                        ("expiry", models.DateTimeField(blank=True, null=True)),
                        (
                            "name",
                            models.CharField(
                                blank=True, help_text="Device or client name.", max_length=100
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="auth_token_set",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "ordering": ["-created"],
                        "db_table": "api_accesstoken",
                        "swappable": "KNOX_TOKEN_MODEL",
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
