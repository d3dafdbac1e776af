"""Models, the seed's room hook, the seed agent migration, and the admin."""

import pytest
from django.contrib.auth import get_user_model
from langchain_core.messages import AIMessage, HumanMessage

from conversations.llm.prompts import TemplateError, render_template, template_variables
from conversations.models import ChatRoom, Conversation, ConversationMessage
from conversations.services import append_message

pytestmark = pytest.mark.django_db


def test_migration_installs_the_seed_language_tutor(tutor):
    assert tutor.first_user_message_template == "첫 문장으로 대화를 시작해주세요."
    assert tutor.temperature == 1
    assert tutor.model == "gpt-4o"
    for variable in ("{언어}", "{상황}", "{레벨}"):
        assert variable in tutor.system_prompt_template
    defaults = {name: spec["default"] for name, spec in tutor.context_schema.items()}
    assert defaults == {
        "언어": "중국어",
        "상황": "스타벅스에서 커피를 주문하는 상황",
        "레벨": "초급",
    }


def test_chat_room_creates_its_conversation_on_create(user, tutor):
    room = ChatRoom.objects.create(user=user, agent=tutor, name="Coffee", context={"레벨": "중급"})
    room.refresh_from_db()
    conversation = room.conversation
    assert conversation is not None
    assert conversation.user == user and conversation.agent == tutor
    assert conversation.context["레벨"] == "중급"
    assert conversation.context["언어"] == "중국어"
    # Saving again does not create another conversation.
    room.name = "Coffee 2"
    room.save()
    assert Conversation.objects.filter(user=user).count() == 1


def test_clear_deletes_all_messages_of_that_conversation_only(user, conversation, plain_agent):
    other = Conversation.objects.create(user=user, agent=plain_agent)
    append_message(conversation=conversation, message=HumanMessage("one"))
    append_message(conversation=conversation, message=AIMessage("two"))
    append_message(conversation=other, message=HumanMessage("kept"))
    assert conversation.clear() == 2
    conversation.refresh_from_db()
    assert conversation.message_count == 0
    assert not ConversationMessage.objects.filter(conversation=conversation).exists()
    assert ConversationMessage.objects.filter(conversation=other).count() == 1


def test_deleting_a_user_deletes_their_conversations_and_messages(user, conversation):
    append_message(conversation=conversation, message=HumanMessage("bye"))
    get_user_model().objects.filter(pk=user.pk).delete()
    assert not Conversation.objects.exists()
    assert not ConversationMessage.objects.exists()


def test_templates_accept_unicode_names_and_refuse_attribute_access():
    assert template_variables("{언어} and {레벨} and {언어}") == ["언어", "레벨"]
    assert render_template("말해요 {언어}", {"언어": "중국어"}) == "말해요 중국어"
    for bad in ("{x.__class__}", "{x[0]}", "{0}", "{"):
        with pytest.raises(TemplateError):
            template_variables(bad)


def test_admin_pages_render_for_staff(client, user, conversation):
    admin_user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456")
    row = append_message(conversation=conversation, message=AIMessage("안녕하세요 " * 30))
    client.force_login(admin_user)
    listing = client.get("/admin/conversations/conversationmessage/")
    assert listing.status_code == 200
    assert "안녕하세요" in listing.content.decode()
    detail = client.get(f"/admin/conversations/conversationmessage/{row.pk}/change/")
    assert detail.status_code == 200
    assert "&quot;_type&quot;: &quot;AIMessage&quot;" in detail.content.decode()
    for model in ("agent", "conversation", "chatroom"):
        assert client.get(f"/admin/conversations/{model}/").status_code == 200
    assert (
        client.get(f"/admin/conversations/conversation/{conversation.pk}/change/").status_code
        == 200
    )


def test_admin_is_for_staff_only(client, user):
    client.force_login(user)
    response = client.get("/admin/conversations/conversationmessage/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
